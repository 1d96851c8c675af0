import Foundation

/// Base64url without padding (RFC 4648 §5), the encoding JWTs and shown-once secrets use.
public enum Base64URL {
    /// Encodes bytes as unpadded base64url.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Decodes base64url, padded or not. Returns nil for anything else (no partial decodes).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        // Standard base64 in the input ("+", "/") is refused: it is not base64url.
        guard !text.contains("+"), !text.contains("/") else { return nil }
        var base64 = String(text).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        switch base64.utf8.count % 4 {
        case 0: break
        case 2: base64 += "=="
        case 3: base64 += "="
        default: return nil
        }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return [UInt8](data)
    }
}
