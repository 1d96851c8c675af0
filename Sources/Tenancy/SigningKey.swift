import Foundation

/// The JWS algorithms a tenant's app tokens may be signed with.
public enum SigningAlgorithm: String, Sendable, CaseIterable, Codable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"
    case edDSA = "EdDSA"
}

/// A key that verifies a tenant's app JWTs. The header's `kid` names it; the key's tenant
/// becomes the request's tenant.
public struct SigningKey: Sendable, Equatable, Hashable {
    public enum Material: Sendable, Equatable, Hashable {
        /// HS256: the shared secret (at least 32 bytes). Stored encrypted at rest.
        case hmacSecret([UInt8])
        /// RS256, ES256, EdDSA: the public key, PEM (SubjectPublicKeyInfo) text.
        case publicKeyPEM(String)
    }

    public enum Status: String, Sendable, CaseIterable {
        case active
        case revoked
    }

    /// Server-generated and globally unique.
    public var kid: String
    public var tenant: TenantID
    public var algorithm: SigningAlgorithm
    public var material: Material
    public var status: Status
    public var createdAt: Date
    public var revokedAt: Date?
    /// A note for people (`web app 2025-05`).
    public var label: String?
    /// For a public key registered as a JWK: the JWK as registered (JSON text), returned to
    /// operators as is; `material` then holds the same key as PEM, which verification uses.
    public var publicKeyJWK: String?

    public init(
        kid: String, tenant: TenantID, algorithm: SigningAlgorithm, material: Material, status: Status,
        createdAt: Date, revokedAt: Date? = nil, label: String? = nil, publicKeyJWK: String? = nil
    ) {
        self.label = label
        self.publicKeyJWK = publicKeyJWK
        self.kid = kid
        self.tenant = tenant
        self.algorithm = algorithm
        self.material = material
        self.status = status
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
