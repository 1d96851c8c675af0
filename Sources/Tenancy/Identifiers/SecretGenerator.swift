/// Random secrets for HS256 signing keys (and anything else that needs unguessable bytes).
public enum SecretGenerator {
    /// HS256 needs at least as many key bytes as its digest (32); shorter keys are refused everywhere.
    public static let minimumHS256SecretBytes = 32

    /// `count` bytes from the system's cryptographically secure generator.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<max(0, count)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A fresh HS256 secret of `byteCount` bytes; asking for fewer than 32 still gives 32.
    public static func hs256Secret(byteCount: Int = 32) -> [UInt8] {
        randomBytes(max(byteCount, minimumHS256SecretBytes))
    }

    /// A fresh HS256 secret, already base64url-encoded (how the control plane shows it, once).
    public static func hs256SecretBase64URL(byteCount: Int = 32) -> String {
        Base64URL.encode(hs256Secret(byteCount: byteCount))
    }
}
