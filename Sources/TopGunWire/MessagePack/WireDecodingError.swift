import TopGunCore

/// Why a frame could not be turned into a message. Every hostile or malformed input ends
/// here as a value; the decoder never traps and never allocates more than the input
/// justifies.
public struct WireDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The input ended inside a value.
        case truncated
        /// A byte that starts no MessagePack value (0xc1 is the only one).
        case invalidFormatByte(UInt8)
        /// Containers nested deeper than the limit.
        case depthLimitExceeded(limit: Int)
        /// The input (or one string or binary inside it) is larger than allowed.
        case sizeLimitExceeded(limit: Int)
        /// An array or map declares more elements than the limit or the input can hold.
        case containerLimitExceeded(limit: Int)
        /// A string that is not valid UTF-8.
        case invalidUTF8
        /// An extension type the protocol does not use.
        case unsupportedExtension(type: Int8)
        /// A map key that is not a string or a scalar that can stand for one.
        case invalidMapKey
        /// Bytes left over after the one value a frame must hold.
        case trailingBytes(count: Int)
        /// The input is not valid JSON (text frames and `topgun wire encode`).
        case invalidJSON(String)
        /// The message is not a map.
        case notAMap
        /// A map without a `type` that is not an HTTP sync body either.
        case missingType
        /// A `type` this protocol does not define.
        case unknownType(String)
        /// A required field is absent.
        case missingField
        /// A field holds a value of the wrong kind.
        case wrongType(expected: String)
        /// A field has the right kind but an unacceptable value.
        case invalidValue(String)
    }

    public var kind: Kind
    /// Where in the message, as a path like `payload.ops[3].record.timestamp.millis`.
    public var field: String?
    /// Byte offset in the frame, for errors found while reading MessagePack.
    public var offset: Int?

    public init(_ kind: Kind, field: String? = nil, offset: Int? = nil) {
        self.kind = kind
        self.field = field
        self.offset = offset
    }

    /// Returns this error with `component` prepended to its field path.
    public func inField(_ component: String) -> WireDecodingError {
        var copy = self
        if let field, !field.isEmpty {
            copy.field = field.hasPrefix("[") ? component + field : component + "." + field
        } else {
            copy.field = component
        }
        return copy
    }

    public var description: String {
        var text: String
        switch kind {
        case .truncated: text = "input ends inside a value"
        case .invalidFormatByte(let b): text = "invalid MessagePack format byte 0x\(String(b, radix: 16))"
        case .depthLimitExceeded(let limit): text = "nesting deeper than \(limit)"
        case .sizeLimitExceeded(let limit): text = "larger than the limit of \(limit) bytes"
        case .containerLimitExceeded(let limit): text = "container declares more elements than allowed (\(limit)) or present"
        case .invalidUTF8: text = "string is not valid UTF-8"
        case .unsupportedExtension(let type): text = "unsupported MessagePack extension type \(type)"
        case .invalidMapKey: text = "map key is not a string"
        case .trailingBytes(let count): text = "\(count) bytes after the end of the message"
        case .invalidJSON(let why): text = "invalid JSON: \(why)"
        case .notAMap: text = "a message must be a map"
        case .missingType: text = "message has no string 'type'"
        case .unknownType(let type): text = "unknown message type '\(type)'"
        case .missingField: text = "required field is missing"
        case .wrongType(let expected): text = "expected \(expected)"
        case .invalidValue(let why): text = why
        }
        if let field { text = "\(field): \(text)" }
        if let offset { text += " (at byte \(offset))" }
        return text
    }
}
