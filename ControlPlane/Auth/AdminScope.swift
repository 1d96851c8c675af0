/// A permission of an admin token. Scopes do not imply one another.
public enum AdminScope: String, Sendable, CaseIterable, Comparable {
    case tenantsRead = "tenants:read"
    case tenantsWrite = "tenants:write"
    case keysRead = "keys:read"
    case keysWrite = "keys:write"
    case quotasWrite = "quotas:write"
    case schemasWrite = "schemas:write"
    case usageRead = "usage:read"
    case auditRead = "audit:read"
    case adminTokensWrite = "admin-tokens:write"

    /// The contract's order, used to sort scopes in responses.
    var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }

    public static func < (lhs: AdminScope, rhs: AdminScope) -> Bool { lhs.rank < rhs.rank }
}

/// Who is calling the control plane, resolved from the admin token at the edge.
public struct AdminCaller: Sendable, Equatable {
    /// An admin token id, or `bootstrap` for the configured token. Audited as the actor and
    /// used to scope idempotency keys and rate limits.
    public var actor: String
    public var scopes: Set<AdminScope>

    public static let bootstrapActor = "bootstrap"

    public init(actor: String, scopes: Set<AdminScope>) {
        self.actor = actor
        self.scopes = scopes
    }
}
