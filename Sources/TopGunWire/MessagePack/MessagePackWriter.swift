import TopGunCore

/// Encodes `DataValue`s as MessagePack, compactly: the smallest integer and container
/// forms, float64 for every non-integer, and never an extension type (the TypeScript
/// client's decoder would not know what to do with one).
public struct MessagePackWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Encodes one value into a fresh buffer.
    public static func encode(_ value: DataValue) -> [UInt8] {
        var writer = MessagePackWriter()
        writer.write(value)
        return writer.bytes
    }

    public mutating func write(_ value: DataValue) {
        switch value {
        case .null: bytes.append(0xc0)
        case .bool(let b): bytes.append(b ? 0xc3 : 0xc2)
        case .int(let i): writeInt(i)
        case .uint(let u): writeUInt(u)
        case .double(let d): writeDouble(d)
        case .string(let s): writeString(s)
        case .binary(let b): writeBinary(b)
        case .array(let elements):
            writeArrayHeader(elements.count)
            for element in elements { write(element) }
        case .object(let object):
            writeMapHeader(object.fields.count)
            for field in object.fields {
                writeString(field.key)
                write(field.value)
            }
        }
    }

    @inline(__always)
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeInt(_ value: Int64) {
        if value >= 0 {
            writeUInt(UInt64(value))
        } else if value >= -32 {
            bytes.append(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int8.min) {
            bytes.append(0xd0); bytes.append(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int16.min) {
            bytes.append(0xd1); appendBigEndian(Int16(value))
        } else if value >= Int64(Int32.min) {
            bytes.append(0xd2); appendBigEndian(Int32(value))
        } else {
            bytes.append(0xd3); appendBigEndian(value)
        }
    }

    public mutating func writeUInt(_ value: UInt64) {
        if value <= 0x7f {
            bytes.append(UInt8(value))
        } else if value <= UInt64(UInt8.max) {
            bytes.append(0xcc); bytes.append(UInt8(value))
        } else if value <= UInt64(UInt16.max) {
            bytes.append(0xcd); appendBigEndian(UInt16(value))
        } else if value <= UInt64(UInt32.max) {
            bytes.append(0xce); appendBigEndian(UInt32(value))
        } else {
            bytes.append(0xcf); appendBigEndian(value)
        }
    }

    /// Appends bytes that are already one encoded MessagePack value.
    public mutating func writeRaw(_ encoded: [UInt8]) {
        bytes.append(contentsOf: encoded)
    }

    public mutating func writeDouble(_ value: Double) {
        bytes.append(0xcb)
        appendBigEndian(value.bitPattern)
    }

    public mutating func writeString(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            let count = utf8.count
            if count <= 31 {
                bytes.append(0xa0 | UInt8(count))
            } else if count <= Int(UInt8.max) {
                bytes.append(0xd9); bytes.append(UInt8(count))
            } else if count <= Int(UInt16.max) {
                bytes.append(0xda); appendBigEndian(UInt16(count))
            } else {
                bytes.append(0xdb); appendBigEndian(UInt32(count))
            }
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func writeBinary(_ value: [UInt8]) {
        let count = value.count
        if count <= Int(UInt8.max) {
            bytes.append(0xc4); bytes.append(UInt8(count))
        } else if count <= Int(UInt16.max) {
            bytes.append(0xc5); appendBigEndian(UInt16(count))
        } else {
            bytes.append(0xc6); appendBigEndian(UInt32(count))
        }
        bytes.append(contentsOf: value)
    }

    public mutating func writeArrayHeader(_ count: Int) {
        if count <= 15 {
            bytes.append(0x90 | UInt8(count))
        } else if count <= Int(UInt16.max) {
            bytes.append(0xdc); appendBigEndian(UInt16(count))
        } else {
            bytes.append(0xdd); appendBigEndian(UInt32(count))
        }
    }

    public mutating func writeMapHeader(_ count: Int) {
        if count <= 15 {
            bytes.append(0x80 | UInt8(count))
        } else if count <= Int(UInt16.max) {
            bytes.append(0xde); appendBigEndian(UInt16(count))
        } else {
            bytes.append(0xdf); appendBigEndian(UInt32(count))
        }
    }
}
