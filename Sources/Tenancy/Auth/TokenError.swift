/// Why an app JWT was refused. Every case has a `reason` fit to send in `AUTH_FAIL`: it names
/// the problem, never a secret.
public enum TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a compact JWS (three base64url parts) or its header or claims are not valid JSON of
    /// the expected shape; the associated text says what, always a fixed text of this module
    /// (never the token's content), so it may be shown to the client.
    case malformedToken(String)
    /// The header has no `kid`: tokens must name the tenant key that signed them.
    case missingKeyId
    /// No signing key has this `kid`.
    case unknownKey(String)
    /// The key was revoked.
    case revokedKey(String)
    /// The header's `alg` is none of HS256, RS256, ES256, EdDSA (e.g. `none`).
    case unsupportedAlgorithm(String)
    /// The header's `alg` is not the algorithm the key was registered for (algorithm confusion).
    case algorithmMismatch(token: String, key: SigningAlgorithm)
    /// The signature does not verify with the key.
    case badSignature
    /// `exp` is past (beyond the clock skew).
    case expired
    /// `nbf`, or `iat`, is in the future (beyond the clock skew).
    case notYetValid
    /// The token has no `exp`; tokens without an end are refused.
    case missingExpiry
    /// The token has no `sub` (or an empty one): there would be no principal.
    case missingSubject
    /// The optional `tenant` claim names another tenant than the key's.
    case tenantMismatch(claimed: String, key: TenantID)
    case tenantSuspended(TenantID)
    case tenantDeleted(TenantID)
    /// The key's tenant does not exist (a dangling key).
    case unknownTenant(TenantID)
    /// The stored key cannot verify anything (an HS256 secret under 32 bytes, an unreadable
    /// public key). Refused before the bytes reach jwt-kit, which traps on short HMAC keys.
    case unusableKey(kid: String, reason: String)
    /// The key or tenant could not be looked up (metadata store down). Temporary: the client
    /// may retry; the others are final.
    case keyStoreUnavailable(String)

    /// A short human-readable explanation, suitable for `AUTH_FAIL`.
    public var reason: String {
        switch self {
        case .malformedToken(let detail): "malformed token: \(detail)"
        case .missingKeyId: "token header has no kid"
        case .unknownKey(let kid): "unknown signing key \(kid)"
        case .revokedKey(let kid): "signing key \(kid) is revoked"
        case .unsupportedAlgorithm(let alg): "unsupported algorithm \(alg) (accepted: HS256, RS256, ES256, EdDSA)"
        case .algorithmMismatch(let token, let key): "token algorithm \(token) does not match the key's algorithm \(key.rawValue)"
        case .badSignature: "invalid signature"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .missingExpiry: "token has no exp claim"
        case .missingSubject: "token has no sub claim"
        case .tenantMismatch(let claimed, let key): "token tenant \(claimed) does not match the key's tenant \(key)"
        case .tenantSuspended(let tenant): "tenant \(tenant) is suspended"
        case .tenantDeleted(let tenant): "tenant \(tenant) is deleted"
        case .unknownTenant(let tenant): "unknown tenant \(tenant)"
        case .unusableKey(let kid, let reason): "signing key \(kid) is unusable: \(reason)"
        case .keyStoreUnavailable(let detail): "signing keys unavailable, retry later: \(detail)"
        }
    }

    /// True when retrying the same token later may succeed (the key store was unreachable).
    public var isTemporary: Bool {
        if case .keyStoreUnavailable = self { return true }
        return false
    }

    public var description: String { reason }
}
