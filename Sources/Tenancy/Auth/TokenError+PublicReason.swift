extension TokenError {
    /// The refusal as a client is told it (`AUTH_FAIL.error`, the 4001 close reason, a 401's
    /// detail): a fixed text per kind of problem, which never repeats what the token carried
    /// (a forged `kid` can be kilobytes long) nor internal error text. `reason` has the detail,
    /// for the log.
    public var publicReason: String {
        switch self {
        case .malformedToken(let what): "malformed token: \(what)"  // fixed texts, see the case
        case .missingKeyId: "token header has no kid"
        case .unknownKey: "unknown signing key"
        case .revokedKey: "signing key revoked"
        case .unsupportedAlgorithm: "unsupported algorithm (accepted: HS256, RS256, ES256, EdDSA)"
        case .algorithmMismatch: "token algorithm does not match the key's"
        case .badSignature: "invalid signature"
        case .expired: "token expired"
        case .notYetValid: "token not yet valid"
        case .missingExpiry: "token has no exp claim"
        case .missingSubject: "token has no sub claim"
        case .tenantMismatch: "token tenant does not match the key's tenant"
        case .tenantSuspended: "tenant suspended"
        case .tenantDeleted: "tenant deleted"
        case .unknownTenant: "unknown tenant"
        case .unusableKey: "signing key unusable"
        case .keyStoreUnavailable: "signing keys unavailable, retry later"
        }
    }
}
