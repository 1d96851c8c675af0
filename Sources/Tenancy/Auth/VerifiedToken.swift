import Foundation

/// What a verified app JWT establishes.
public struct VerifiedToken: Sendable, Equatable {
    /// The tenant of the key that signed the token.
    public var tenant: TenantID
    /// The token's `sub`.
    public var principal: String
    /// The `roles` claim; `[]` when absent.
    public var roles: [String]
    /// The `kid` of the key that signed the token.
    public var keyId: String
    /// The `exp` claim.
    public var expiresAt: Date
    /// The `iat` claim, when present.
    public var issuedAt: Date?

    public init(tenant: TenantID, principal: String, roles: [String], keyId: String, expiresAt: Date, issuedAt: Date? = nil) {
        self.tenant = tenant
        self.principal = principal
        self.roles = roles
        self.keyId = keyId
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
    }

    /// The request context every handler receives for this token.
    public func requestContext(requestId: String) -> RequestContext {
        RequestContext(tenant: tenant, principal: principal, roles: roles, requestId: requestId, keyId: keyId)
    }
}
