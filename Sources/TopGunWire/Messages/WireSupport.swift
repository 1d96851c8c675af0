import TopGunCore

/// A field whose wire form is one of a fixed set of strings (change types, node states,
/// search methods, ...). An unknown string is an `invalidValue` error naming the field.
public protocol WireStringEnum: RawRepresentable, CaseIterable, Hashable, WireField where RawValue == String {}

extension WireStringEnum {
    public init(wire value: DataValue) throws(WireDecodingError) {
        let text = try String(wire: value)
        guard let known = Self(rawValue: text) else {
            let allowed = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw WireDecodingError(.invalidValue("unknown value '\(text)', expected one of: \(allowed)"))
        }
        self = known
    }

    public var wireValue: DataValue { .string(rawValue) }
}

/// How a live result changed (`QUERY_UPDATE`, `SEARCH_UPDATE`, hybrid and cluster updates).
public enum ChangeType: String, Sendable, WireStringEnum {
    case enter = "ENTER"
    case update = "UPDATE"
    case leave = "LEAVE"
}

/// Opaque binary (`BATCH.data`, vector search `queryVector`/`vector`).
///
/// Encodes as MessagePack `bin`. Decoding also accepts what the TypeScript client really
/// sends for a `Uint8Array` (protocol.md §6.2 quirk): a map `{"0": b0, "1": b1, …}` whose keys
/// are exactly the indices `0..<n` and whose values are bytes, and an array of bytes.
public struct WireBinary: WireField, Hashable, Sendable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public init(wire value: DataValue) throws(WireDecodingError) {
        switch value {
        case .binary(let bytes):
            self.bytes = bytes
        case .array(let elements):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                bytes.append(try Self.byte(element, at: "[\(index)]"))
            }
            self.bytes = bytes
        case .object(let object):
            // msgpackr's plain mode turns a Uint8Array into a string-indexed object.
            var bytes = [UInt8](repeating: 0, count: object.count)
            var seen = [Bool](repeating: false, count: object.count)
            for field in object.fields {
                guard let index = Int(field.key), index >= 0, index < object.count, !seen[index],
                    String(index) == field.key
                else {
                    throw WireDecodingError(.wrongType(expected: "binary, got map that is not a byte array"))
                }
                seen[index] = true
                bytes[index] = try Self.byte(field.value, at: field.key)
            }
            self.bytes = bytes
        default:
            throw .wrongType("binary", got: value)
        }
    }

    private static func byte(_ value: DataValue, at path: String) throws(WireDecodingError) -> UInt8 {
        guard let number = value.int64Value, let byte = UInt8(exactly: number) else {
            throw WireDecodingError(.invalidValue("expected a byte (0...255)"), field: path)
        }
        return byte
    }

    public var wireValue: DataValue { .binary(bytes) }

    /// The bytes read as consecutive little-endian 32-bit floats (the layout of a vector
    /// search `queryVector`); trailing bytes that do not fill a float are ignored.
    public var littleEndianFloat32s: [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { offset in
            let bits = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8
                | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            return Float(bitPattern: bits)
        }
    }

    /// Binary holding `floats` as little-endian 32-bit floats.
    public init(littleEndianFloat32s floats: [Float]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * 4)
        for float in floats {
            let bits = float.bitPattern
            bytes.append(contentsOf: [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)])
        }
        self.bytes = bytes
    }
}

extension DataObject {
    /// Reads the required nested map `key` with `read`, prefixing errors with `key`
    /// (for messages that keep part of their fields under `payload` and part beside it).
    @inlinable
    public func nested<T>(_ key: String, _ read: (DataObject) throws(WireDecodingError) -> T) throws(WireDecodingError) -> T {
        let inner: DataObject = try required(key)
        do {
            return try read(inner)
        } catch {
            throw error.inField(key)
        }
    }

    /// A required `any` field: absent reads as nil, like the `null` the protocol sends
    /// (`QUERY_UPDATE` LEAVE, a record's tombstone value). Always written back.
    @inlinable
    public func anyValue(_ key: String) -> DataValue {
        self[key] ?? .null
    }
}
