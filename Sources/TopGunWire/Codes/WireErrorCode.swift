import TopGunCore

/// The project's error codes on the wire (protocol.md §15).
public enum WireErrorCode: Int64, Sendable {
    /// Malformed or invalid message: undecodable frame, wrong field type, unknown type.
    case badRequest = 400
    /// A data message before `AUTH_ACK`.
    case unauthorized = 401
    /// Role, tenant mismatch, suspended tenant.
    case forbidden = 403
    /// Unknown resource where one is named.
    case notFound = 404
    /// Frame or value too large.
    case tooLarge = 413
    /// Value violates the map's schema.
    case schemaViolation = 422
    /// Quota or rate limit.
    case rateLimited = 429
    /// Internal error (logged with the request id).
    case internalError = 500
    /// Feature not built.
    case featureUnavailable = 501
    /// Temporarily unavailable: storage down past a PERSISTED write's timeout, shutting down.
    case unavailable = 503
}

/// WebSocket close codes (protocol.md §15).
public enum CloseCode: UInt16, Sendable {
    case normal = 1000
    case goingAway = 1001
    /// A text frame that is not UTF-8 (RFC 6455 §8.1).
    case invalidFramePayload = 1007
    case policyViolation = 1008
    case messageTooBig = 1009
    case tryAgainLater = 1013
    case unauthorized = 4001
    case heartbeatTimeout = 4002
}

extension ErrorMessage {
    /// An `ERROR` with one of the project's codes.
    public static func make(_ code: WireErrorCode, _ message: String, details: DataObject? = nil) -> ErrorMessage {
        ErrorMessage(code: code.rawValue, message: message, details: details.map { .object($0) })
    }
}
