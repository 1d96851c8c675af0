/// The reason text of a WebSocket close frame.
///
/// A close frame is a control frame, whose payload is at most 125 bytes (RFC 6455 §5.5):
/// the 2-byte code and at most 123 bytes of UTF-8. A longer payload makes conforming clients
/// fail the connection (they report an abnormal closure, 1006, instead of our code). Reasons
/// are fixed texts of this project, never client input and never internal type names; the
/// detail of why a connection closed goes to the log with the request id.
public enum CloseReason {
    /// Bytes of reason a close frame can carry after its code.
    public static let maxBytes = 123

    /// `text` cut to at most ``maxBytes`` bytes of UTF-8, on a character boundary.
    public static func fitted(_ text: String) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var fitted = ""
        var bytes = 0
        for character in text {
            let size = character.utf8.count
            guard bytes + size <= maxBytes else { break }
            fitted.append(character)
            bytes += size
        }
        return fitted
    }
}
