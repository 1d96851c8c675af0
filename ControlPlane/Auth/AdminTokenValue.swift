import Crypto
import Foundation
import Tenancy

/// Admin token values: `tgadm_` + 43 base64url characters (256 random bits). Only their
/// SHA-256 is stored.
public enum AdminTokenValue {
    public static let prefix = "tgadm_"

    /// A fresh random value.
    public static func generate() -> String {
        prefix + Base64URL.encode(SecretGenerator.randomBytes(32))
    }

    /// What the store keeps and looks tokens up by.
    public static func hash(_ value: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(value.utf8)))
    }

    /// The first 10 characters, shown to recognise a token.
    public static func displayPrefix(_ value: String) -> String {
        String(value.prefix(10))
    }

    /// Whether `value` has the form of a generated token (the bootstrap token may be any
    /// string of 32 or more printable characters).
    public static func isWellFormed(_ value: String) -> Bool {
        guard value.hasPrefix(prefix) else { return false }
        let rest = value.utf8.dropFirst(prefix.utf8.count)
        return rest.count == 43 && rest.allSatisfy(isBase64URLByte)
    }

    static func isBase64URLByte(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
    }
}
