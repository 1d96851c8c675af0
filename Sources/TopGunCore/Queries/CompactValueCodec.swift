/// A compact, self-describing binary form of `DataValue`, for query cursors and for stable
/// query hashes. Not a wire format: only this module reads it.
///
/// Layout: one tag byte, then the payload (big-endian fixed-width numbers, LEB128 lengths).
/// The canonical form (for hashing and for ordering objects) sorts object keys by UTF-8 bytes
/// and writes whole doubles as integers, so values equal under `DataValue ==` encode alike.
enum CompactValueCodec {
    private enum Tag: UInt8 {
        case null = 0, falseValue, trueValue, int, uint, double, string, binary, array, object
    }

    /// Deepest nesting the decoder follows; a cursor never needs much.
    static let maximumDepth = 32

    static func canonicalBytes(_ value: DataValue) -> [UInt8] {
        var writer = Writer()
        encode(value, into: &writer, canonical: true)
        return writer.bytes
    }

    static func encode(_ value: DataValue, into writer: inout Writer, canonical: Bool) {
        switch value {
        case .null: writer.byte(Tag.null.rawValue)
        case .bool(let b): writer.byte(b ? Tag.trueValue.rawValue : Tag.falseValue.rawValue)
        case .int(let i):
            writer.byte(Tag.int.rawValue)
            writer.uint64(UInt64(bitPattern: i))
        case .uint(let u):
            writer.byte(Tag.uint.rawValue)
            writer.uint64(u)
        case .double(let d):
            if canonical, let whole = value.int64Value {
                writer.byte(Tag.int.rawValue)
                writer.uint64(UInt64(bitPattern: whole))
            } else if canonical, d.isNaN {
                writer.byte(Tag.double.rawValue)
                writer.uint64(Double.nan.bitPattern)
            } else {
                writer.byte(Tag.double.rawValue)
                writer.uint64(d.bitPattern)
            }
        case .string(let s):
            writer.byte(Tag.string.rawValue)
            writer.string(s)
        case .binary(let bytes):
            writer.byte(Tag.binary.rawValue)
            writer.varint(UInt64(bytes.count))
            writer.bytes.append(contentsOf: bytes)
        case .array(let elements):
            writer.byte(Tag.array.rawValue)
            writer.varint(UInt64(elements.count))
            for element in elements { encode(element, into: &writer, canonical: canonical) }
        case .object(let object):
            writer.byte(Tag.object.rawValue)
            writer.varint(UInt64(object.count))
            var fields = object.fields
            if canonical {
                fields.sort { ValueOrdering.compareStrings($0.key, $1.key) == .less }
            }
            for field in fields {
                writer.string(field.key)
                encode(field.value, into: &writer, canonical: canonical)
            }
        }
    }

    /// Reads one value; nil on malformed input (never traps).
    static func decode(from reader: inout Reader, depth: Int = 0) -> DataValue? {
        guard depth < maximumDepth, let raw = reader.byte(), let tag = Tag(rawValue: raw) else { return nil }
        switch tag {
        case .null: return .null
        case .falseValue: return .bool(false)
        case .trueValue: return .bool(true)
        case .int: return reader.uint64().map { .int(Int64(bitPattern: $0)) }
        case .uint: return reader.uint64().map { .uint($0) }
        case .double: return reader.uint64().map { .double(Double(bitPattern: $0)) }
        case .string: return reader.string().map { .string($0) }
        case .binary:
            guard let count = reader.count(), let bytes = reader.bytes(count) else { return nil }
            return .binary(bytes)
        case .array:
            guard let count = reader.count() else { return nil }
            var elements: [DataValue] = []
            for _ in 0..<count {
                guard let element = decode(from: &reader, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        case .object:
            guard let count = reader.count() else { return nil }
            var object = DataObject()
            for _ in 0..<count {
                guard let key = reader.string(), let element = decode(from: &reader, depth: depth + 1) else { return nil }
                object.append(key, element)
            }
            return .object(object)
        }
    }
}

extension CompactValueCodec {
    /// Appends big-endian integers, LEB128 lengths and length-prefixed UTF-8 strings.
    struct Writer {
        var bytes: [UInt8] = []

        mutating func byte(_ value: UInt8) { bytes.append(value) }

        mutating func uint64(_ value: UInt64) {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }

        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(rest))
        }

        mutating func string(_ value: String) {
            varint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }
    }

    /// Bounds-checked reader matching ``Writer``; every read returns nil past the end.
    struct Reader {
        private let bytes: [UInt8]
        private(set) var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var isAtEnd: Bool { offset == bytes.count }

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func uint64() -> UInt64? {
            guard bytes.count - offset >= 8 else { return nil }
            var value: UInt64 = 0
            for _ in 0..<8 { value = value << 8 | UInt64(bytes[offset]); offset += 1 }
            return value
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while shift < 64 {
                guard let byte = byte() else { return nil }
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        /// A length or element count, refused when larger than the bytes left (each element
        /// takes at least one byte), so hostile input cannot make us allocate.
        mutating func count() -> Int? {
            guard let value = varint(), value <= UInt64(bytes.count - offset) else { return nil }
            return Int(value)
        }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func string() -> String? {
            guard let count = count(), let raw = bytes(count) else { return nil }
            return String(validating: raw, as: UTF8.self)
        }
    }
}
