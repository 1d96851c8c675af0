import TopGunCore

/// Where a message keeps its fields (protocol.md §6.4): on the top-level map next to
/// `type`, or inside a `payload` map.
public enum MessageEnvelope: Sendable {
    case flat
    case payload
}

/// The typed body of one protocol message type.
///
/// `init(wireFields:)` reads the map that holds the fields (the top-level map for flat
/// messages, `payload` otherwise) and ignores keys it does not know; `wireFields` writes
/// them back, omitting absent optionals.
public protocol MessageBody: Sendable, Equatable {
    /// The value of the message's `type` field.
    static var type: String { get }
    static var envelope: MessageEnvelope { get }
    init(wireFields: DataObject) throws(WireDecodingError)
    var wireFields: DataObject { get }
}
