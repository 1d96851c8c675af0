/// How a packed value's bytes are read back into a `DataValue`. The format lives with its
/// codec (TopGunWire's MessagePack); this module only keeps the bytes. Its metatype is
/// Sendable: a packed value holds it and crosses actors.
public protocol PackedValueFormat: SendableMetatype {
    /// The value `bytes` encode. They were checked when the value was packed, so this
    /// cannot fail.
    static func decode(_ bytes: [UInt8]) -> DataValue
}

/// A value kept as the bytes it arrived in (one allocation), not as a tree of objects
/// (one per string, array and object): written values are mostly stored and passed on, and
/// read as values only by queries, schema checks and JSON. Decoded on each read.
public struct PackedValue: Sendable {
    public let bytes: [UInt8]
    public let format: any PackedValueFormat.Type

    @inlinable
    public init(bytes: [UInt8], format: any PackedValueFormat.Type) {
        self.bytes = bytes
        self.format = format
    }

    @inlinable
    public var decoded: DataValue { format.decode(bytes) }
}

/// A record's value: a `DataValue`, or its encoding as it arrived (`PackedValue`).
/// Either way it means the same value; equality and hashing go by the decoded value.
public enum RecordValue: Sendable {
    case decoded(DataValue)
    case packed(PackedValue)

    @inlinable
    public var dataValue: DataValue {
        switch self {
        case .decoded(let value): return value
        case .packed(let packed): return packed.decoded
        }
    }
}
