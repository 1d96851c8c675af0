import Foundation

/// An operator credential for the control plane. Only the SHA-256 of its value is stored.
public struct AdminTokenRecord: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case active
        case revoked
        case expired
    }

    /// Revoked wins over expired.
    public func status(at now: Date) -> Status {
        if revokedAt != nil { return .revoked }
        if let expiresAt, expiresAt <= now { return .expired }
        return .active
    }

    /// `adm_` + 20 base32 characters.
    public var id: String
    public var name: String
    /// Scope names (`tenants:read`, ...), in the contract's order.
    public var scopes: [String]
    /// SHA-256 of the token's value (32 bytes); looked up on every request.
    public var valueHash: [UInt8]
    /// The value's first 10 characters, to recognise it.
    public var prefix: String
    public var createdAt: Date
    /// An admin token id or `bootstrap`.
    public var createdBy: String
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: String, name: String, scopes: [String], valueHash: [UInt8], prefix: String, createdAt: Date,
        createdBy: String, expiresAt: Date? = nil, lastUsedAt: Date? = nil, revokedAt: Date? = nil
    ) {
        self.id = id
        self.name = name
        self.scopes = scopes
        self.valueHash = valueHash
        self.prefix = prefix
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}
