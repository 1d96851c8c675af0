import TopGunCore

extension MessagePackWriter {
    /// The number of bytes `write(value)` appends, computed without encoding: what pages of
    /// results are cut by (a page must stay within a byte budget, and encoding every candidate
    /// twice would double the cost of the largest responses).
    public static func encodedSize(of value: DataValue) -> Int {
        switch value {
        case .null, .bool: return 1
        case .int(let i): return i >= 0 ? uintSize(UInt64(i)) : intSize(i)
        case .uint(let u): return uintSize(u)
        case .double: return 9
        case .string(let s): return stringSize(s)
        case .binary(let b): return (b.count <= Int(UInt8.max) ? 2 : b.count <= Int(UInt16.max) ? 3 : 5) + b.count
        case .array(let elements):
            return containerHeaderSize(elements.count) + elements.reduce(0) { $0 + encodedSize(of: $1) }
        case .object(let object):
            return containerHeaderSize(object.fields.count)
                + object.fields.reduce(0) { $0 + stringSize($1.key) + encodedSize(of: $1.value) }
        }
    }

    /// Bytes of a string as `writeString` writes it.
    public static func stringSize(_ string: String) -> Int {
        let count = string.utf8.count
        return (count <= 31 ? 1 : count <= Int(UInt8.max) ? 2 : count <= Int(UInt16.max) ? 3 : 5) + count
    }

    static func uintSize(_ value: UInt64) -> Int {
        value <= 0x7f ? 1 : value <= UInt64(UInt8.max) ? 2 : value <= UInt64(UInt16.max) ? 3 : value <= UInt64(UInt32.max) ? 5 : 9
    }

    static func intSize(_ value: Int64) -> Int {
        value >= -32 ? 1 : value >= Int64(Int8.min) ? 2 : value >= Int64(Int16.min) ? 3 : value >= Int64(Int32.min) ? 5 : 9
    }

    static func containerHeaderSize(_ count: Int) -> Int {
        count <= 15 ? 1 : count <= Int(UInt16.max) ? 3 : 5
    }
}
