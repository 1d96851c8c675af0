import TopGunCore

/// Decodes one MessagePack value into a `DataValue`.
///
/// Every length is checked against the bytes actually present before anything is
/// allocated, so a frame that declares a 4 GiB string or a billion-element array costs
/// nothing but the error. Extension types: the timestamp extension (-1) becomes a number of
/// milliseconds since the epoch, msgpackr's `undefined` (fixext1 type 0) becomes nil, any
/// other extension is an error, because the protocol never sends one.
public struct MessagePackReader {
    public let limits: MessagePackLimits

    public init(limits: MessagePackLimits = .default) {
        self.limits = limits
    }

    /// Decodes `bytes`, which must hold exactly one value.
    public func decode(_ bytes: [UInt8]) throws(WireDecodingError) -> DataValue {
        guard bytes.count <= limits.maxInputBytes else {
            throw WireDecodingError(.sizeLimitExceeded(limit: limits.maxInputBytes))
        }
        let result: Result<DataValue, WireDecodingError> = bytes.withUnsafeBufferPointer { buffer in
            var cursor = Cursor(base: buffer, limits: limits)
            do throws(WireDecodingError) {
                let value = try cursor.readValue(depth: 0)
                if cursor.position != buffer.count {
                    return .failure(WireDecodingError(.trailingBytes(count: buffer.count - cursor.position), offset: cursor.position))
                }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Decodes a slice of bytes (for instance a frame inside a larger buffer).
    public func decode(_ bytes: ArraySlice<UInt8>) throws(WireDecodingError) -> DataValue {
        try decode(Array(bytes))
    }
}

/// The reading position over one input buffer.
struct Cursor {
    let base: UnsafeBufferPointer<UInt8>
    let limits: MessagePackLimits
    var position = 0

    init(base: UnsafeBufferPointer<UInt8>, limits: MessagePackLimits) {
        self.base = base
        self.limits = limits
    }

    @inline(__always)
    var remaining: Int { base.count &- position }

    @inline(__always)
    mutating func readByte() throws(WireDecodingError) -> UInt8 {
        guard position < base.count else { throw WireDecodingError(.truncated, offset: position) }
        let byte = base[position]
        position &+= 1
        return byte
    }

    @inline(__always)
    mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws(WireDecodingError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw WireDecodingError(.truncated, offset: position) }
        var value: T = 0
        for index in 0..<size {
            value = (value << 8) | T(truncatingIfNeeded: base[position &+ index])
        }
        position &+= size
        return value
    }

    /// Reserves `count` bytes of payload and returns their start.
    @inline(__always)
    mutating func take(_ count: Int) throws(WireDecodingError) -> Int {
        guard count >= 0, count <= remaining else { throw WireDecodingError(.truncated, offset: position) }
        let start = position
        position &+= count
        return start
    }

    mutating func readString(length: Int) throws(WireDecodingError) -> String {
        let start = try take(length)
        let slice = UnsafeBufferPointer(rebasing: base[start..<(start + length)])
        guard let string = UTF8Text.string(slice) else {
            throw WireDecodingError(.invalidUTF8, offset: start)
        }
        return string
    }

    mutating func readBinary(length: Int) throws(WireDecodingError) -> [UInt8] {
        let start = try take(length)
        return Array(base[start..<(start + length)])
    }

    /// Checks a declared container size against the limit and the bytes left: every
    /// element needs at least one byte (two for a map entry), so a larger count is a lie.
    @inline(__always)
    func checkCount(_ count: Int, bytesPerElement: Int) throws(WireDecodingError) {
        guard count <= limits.maxContainerCount, count <= remaining / bytesPerElement else {
            throw WireDecodingError(.containerLimitExceeded(limit: limits.maxContainerCount), offset: position)
        }
    }

    mutating func readArray(count: Int, depth: Int) throws(WireDecodingError) -> DataValue {
        try checkCount(count, bytesPerElement: 1)
        guard depth < limits.maxDepth else { throw WireDecodingError(.depthLimitExceeded(limit: limits.maxDepth), offset: position) }
        var elements: [DataValue] = []
        elements.reserveCapacity(count)
        for index in 0..<count {
            do {
                elements.append(try readValue(depth: depth + 1))
            } catch {
                throw error.inField("[\(index)]")
            }
        }
        return .array(elements)
    }

    mutating func readMap(count: Int, depth: Int) throws(WireDecodingError) -> DataValue {
        try checkCount(count, bytesPerElement: 2)
        guard depth < limits.maxDepth else { throw WireDecodingError(.depthLimitExceeded(limit: limits.maxDepth), offset: position) }
        var fields: [DataObject.Field] = []
        fields.reserveCapacity(count)
        for _ in 0..<count {
            let key = try readKey(depth: depth)
            do {
                fields.append(DataObject.Field(key: key, value: try readValue(depth: depth + 1)))
            } catch {
                throw error.inField(key)
            }
        }
        return .object(DataObject(fields: fields))
    }

    /// Map keys are strings; scalar keys become their JavaScript string form, as msgpackr
    /// does when it turns a map into an object.
    mutating func readKey(depth: Int) throws(WireDecodingError) -> String {
        let byte = try readByte()
        if byte & 0xe0 == 0xa0 { return try readString(length: Int(byte & 0x1f)) }
        switch byte {
        case 0xd9: return try readString(length: Int(try readBigEndian(UInt8.self)))
        case 0xda: return try readString(length: Int(try readBigEndian(UInt16.self)))
        case 0xdb: return try readString(length: Int(try readBigEndian(UInt32.self)))
        default:
            position -= 1
            let offset = position
            switch try readValue(depth: depth + 1) {
            case .int(let i): return String(i)
            case .uint(let u): return String(u)
            case .double(let d): return JSONWriter.numberText(d)
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            default: throw WireDecodingError(.invalidMapKey, offset: offset)
            }
        }
    }

    mutating func readExtension(type: Int8, length: Int) throws(WireDecodingError) -> DataValue {
        let start = try take(length)
        switch (type, length) {
        case (0, 1):
            // msgpackr's encoding of `undefined`; the client strips it, but tolerate it as nil.
            return .null
        case (-1, 4):
            let seconds = UInt32(base[start]) << 24 | UInt32(base[start + 1]) << 16 | UInt32(base[start + 2]) << 8 | UInt32(base[start + 3])
            return .int(Int64(seconds) * 1000)
        case (-1, 8):
            var raw: UInt64 = 0
            for index in 0..<8 { raw = raw << 8 | UInt64(base[start + index]) }
            let nanoseconds = Int64(raw >> 34)
            let seconds = Int64(raw & 0x3_ffff_ffff)
            return Self.millis(seconds: seconds, nanoseconds: nanoseconds)
        case (-1, 12):
            var nanos: UInt32 = 0
            for index in 0..<4 { nanos = nanos << 8 | UInt32(base[start + index]) }
            var seconds: UInt64 = 0
            for index in 4..<12 { seconds = seconds << 8 | UInt64(base[start + index]) }
            return Self.millis(seconds: Int64(bitPattern: seconds), nanoseconds: Int64(nanos))
        default:
            throw WireDecodingError(.unsupportedExtension(type: type), offset: start)
        }
    }

    static func millis(seconds: Int64, nanoseconds: Int64) -> DataValue {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return .double(Double(seconds) * 1000 + Double(nanoseconds) / 1_000_000) }
        if nanoseconds % 1_000_000 == 0 { return .int(product + nanoseconds / 1_000_000) }
        return .double(Double(product) + Double(nanoseconds) / 1_000_000)
    }

    mutating func readValue(depth: Int) throws(WireDecodingError) -> DataValue {
        let byte = try readByte()
        switch byte {
        case 0x00...0x7f: return .int(Int64(byte))
        case 0x80...0x8f: return try readMap(count: Int(byte & 0x0f), depth: depth)
        case 0x90...0x9f: return try readArray(count: Int(byte & 0x0f), depth: depth)
        case 0xa0...0xbf: return .string(try readString(length: Int(byte & 0x1f)))
        case 0xc0: return .null
        case 0xc1: throw WireDecodingError(.invalidFormatByte(byte), offset: position - 1)
        case 0xc2: return .bool(false)
        case 0xc3: return .bool(true)
        case 0xc4: return .binary(try readBinary(length: Int(try readBigEndian(UInt8.self))))
        case 0xc5: return .binary(try readBinary(length: Int(try readBigEndian(UInt16.self))))
        case 0xc6: return .binary(try readBinary(length: Int(try readBigEndian(UInt32.self))))
        case 0xc7:
            let length = Int(try readBigEndian(UInt8.self))
            return try readExtension(type: Int8(bitPattern: try readByte()), length: length)
        case 0xc8:
            let length = Int(try readBigEndian(UInt16.self))
            return try readExtension(type: Int8(bitPattern: try readByte()), length: length)
        case 0xc9:
            let length = Int(try readBigEndian(UInt32.self))
            return try readExtension(type: Int8(bitPattern: try readByte()), length: length)
        case 0xca: return .double(Double(Float(bitPattern: try readBigEndian(UInt32.self))))
        case 0xcb: return .double(Double(bitPattern: try readBigEndian(UInt64.self)))
        case 0xcc: return .int(Int64(try readBigEndian(UInt8.self)))
        case 0xcd: return .int(Int64(try readBigEndian(UInt16.self)))
        case 0xce: return .int(Int64(try readBigEndian(UInt32.self)))
        case 0xcf:
            let value = try readBigEndian(UInt64.self)
            return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
        case 0xd0: return .int(Int64(Int8(bitPattern: try readByte())))
        case 0xd1: return .int(Int64(try readBigEndian(Int16.self)))
        case 0xd2: return .int(Int64(try readBigEndian(Int32.self)))
        case 0xd3: return .int(try readBigEndian(Int64.self))
        case 0xd4: return try readExtension(type: Int8(bitPattern: try readByte()), length: 1)
        case 0xd5: return try readExtension(type: Int8(bitPattern: try readByte()), length: 2)
        case 0xd6: return try readExtension(type: Int8(bitPattern: try readByte()), length: 4)
        case 0xd7: return try readExtension(type: Int8(bitPattern: try readByte()), length: 8)
        case 0xd8: return try readExtension(type: Int8(bitPattern: try readByte()), length: 16)
        case 0xd9: return .string(try readString(length: Int(try readBigEndian(UInt8.self))))
        case 0xda: return .string(try readString(length: Int(try readBigEndian(UInt16.self))))
        case 0xdb: return .string(try readString(length: Int(try readBigEndian(UInt32.self))))
        case 0xdc: return try readArray(count: Int(try readBigEndian(UInt16.self)), depth: depth)
        case 0xdd: return try readArray(count: Int(try readBigEndian(UInt32.self)), depth: depth)
        case 0xde: return try readMap(count: Int(try readBigEndian(UInt16.self)), depth: depth)
        case 0xdf: return try readMap(count: Int(try readBigEndian(UInt32.self)), depth: depth)
        default: return .int(Int64(Int8(bitPattern: byte)))  // 0xe0...0xff negative fixint
        }
    }
}
