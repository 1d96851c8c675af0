/// Server-generated identifiers. They are unique by randomness (100 and 120 bits); the
/// database's primary keys enforce it as well.
public enum IDGenerator {
    /// Lowercase RFC 4648 base32: 32 symbols, so a random byte masked to 5 bits picks one
    /// without bias, and ids stay case-insensitive and URL-safe.
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// A tenant id: `tn_` followed by 20 random base32 characters.
    public static func tenantID() -> TenantID {
        TenantID("tn_" + randomString(length: 20))
    }

    /// A signing key id (`kid`): `key_` followed by 24 random base32 characters.
    public static func keyID() -> String {
        "key_" + randomString(length: 24)
    }

    /// An admin token id: `adm_` followed by 20 random base32 characters.
    public static func adminTokenID() -> String {
        "adm_" + randomString(length: 20)
    }

    /// An audit event id: `aud_` followed by 26 random base32 characters.
    public static func auditEventID() -> String {
        "aud_" + randomString(length: 26)
    }

    /// `length` random base32 characters from the system's secure generator.
    public static func randomString(length: Int) -> String {
        let bytes = SecretGenerator.randomBytes(length)
        return String(decoding: bytes.map { alphabet[Int($0 & 31)] }, as: UTF8.self)
    }
}
