import TopGunCore

/// MessagePack as the format of `PackedValue`s: what a client sent, kept as it was sent.
public enum MessagePackFormat: PackedValueFormat {
    /// Depth and counts were checked against the connection's limits when the value was
    /// packed; reading it back needs no limit of its own.
    static let unlimited = MessagePackLimits(maxInputBytes: .max, maxDepth: .max, maxContainerCount: .max)

    public static func decode(_ bytes: [UInt8]) -> DataValue {
        (try? MessagePackReader(limits: unlimited).decode(bytes)) ?? .null
    }

    /// `value` packed: its MessagePack encoding, as `MessagePackWriter` writes it.
    public static func pack(_ value: DataValue) -> PackedValue {
        PackedValue(bytes: MessagePackWriter.encode(value), format: MessagePackFormat.self)
    }
}

extension Cursor {
    /// Reads a record's value: packed (its bytes copied, no tree of objects built) when it
    /// keeps to the plain subset that reads back exactly as `readValue` would read it now,
    /// decoded otherwise; nil for MessagePack nil (a tombstone).
    mutating func readRecordValue(depth: Int) throws(WireDecodingError) -> RecordValue? {
        let start = position
        if skipPlainValue(depth: depth) {
            if base[start] == 0xc0 { return nil }
            return .packed(PackedValue(bytes: Array(UnsafeBufferPointer(rebasing: base[start..<position])), format: MessagePackFormat.self))
        }
        position = start
        let value = try readValue(depth: depth)
        return value.isNull ? nil : .decoded(value)
    }

    /// Steps over one value of the plain subset: nil, booleans, integers, floats, valid UTF-8
    /// strings, binaries, arrays, and maps with string keys, within the limits `readValue`
    /// applies. False (the position then undefined) for anything else: extension types,
    /// non-string keys, invalid UTF-8, a limit exceeded, or truncated input; `readValue`
    /// then decides, with its own conversion or error.
    mutating func skipPlainValue(depth: Int) -> Bool {
        guard position < base.count else { return false }
        let byte = base[position]
        position &+= 1
        switch byte {
        case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: return true
        case 0x80...0x8f: return skipPlainMap(count: Int(byte & 0x0f), depth: depth)
        case 0x90...0x9f: return skipPlainArray(count: Int(byte & 0x0f), depth: depth)
        case 0xa0...0xbf: return skipPlainString(length: Int(byte & 0x1f))
        case 0xc4...0xc6: return skipSized(lengthBytes: 1 << Int(byte - 0xc4), .binary, depth: depth)
        case 0xcc, 0xd0: return skipBytes(1)
        case 0xcd, 0xd1: return skipBytes(2)
        case 0xca, 0xce, 0xd2: return skipBytes(4)
        case 0xcb, 0xcf, 0xd3: return skipBytes(8)
        case 0xd9...0xdb: return skipSized(lengthBytes: 1 << Int(byte - 0xd9), .string, depth: depth)
        case 0xdc, 0xdd: return skipSized(lengthBytes: byte == 0xdc ? 2 : 4, .array, depth: depth)
        case 0xde, 0xdf: return skipSized(lengthBytes: byte == 0xde ? 2 : 4, .map, depth: depth)
        default: return false  // 0xc1 and the extension types
        }
    }

    private enum Sized { case binary, string, array, map }

    /// A value whose length or count comes first, in `lengthBytes` big-endian bytes.
    private mutating func skipSized(lengthBytes: Int, _ kind: Sized, depth: Int) -> Bool {
        guard let length = skipLength(bytes: lengthBytes) else { return false }
        switch kind {
        case .binary: return skipBytes(length)
        case .string: return skipPlainString(length: length)
        case .array: return skipPlainArray(count: length, depth: depth)
        case .map: return skipPlainMap(count: length, depth: depth)
        }
    }

    private mutating func skipLength(bytes size: Int) -> Int? {
        guard remaining >= size else { return nil }
        var value = 0
        for index in 0..<size { value = value << 8 | Int(base[position &+ index]) }
        position &+= size
        return value
    }

    private mutating func skipBytes(_ count: Int) -> Bool {
        guard count <= remaining else { return false }
        position &+= count
        return true
    }

    private mutating func skipPlainString(length: Int) -> Bool {
        guard length <= remaining else { return false }
        let bytes = UnsafeBufferPointer(rebasing: base[position..<(position &+ length)])
        guard UTF8Text.isWellFormed(bytes) else { return false }
        position &+= length
        return true
    }

    private mutating func skipPlainArray(count: Int, depth: Int) -> Bool {
        guard depth < limits.maxDepth, count <= limits.maxContainerCount, count <= remaining else { return false }
        for _ in 0..<count where !skipPlainValue(depth: depth + 1) { return false }
        return true
    }

    private mutating func skipPlainMap(count: Int, depth: Int) -> Bool {
        guard depth < limits.maxDepth, count <= limits.maxContainerCount, count <= remaining / 2 else { return false }
        for _ in 0..<count {
            guard position < base.count else { return false }
            let byte = base[position]
            position &+= 1
            let keyLength: Int?
            switch byte {
            case 0xa0...0xbf: keyLength = Int(byte & 0x1f)
            case 0xd9...0xdb: keyLength = skipLength(bytes: 1 << Int(byte - 0xd9))
            default: keyLength = nil  // a non-string key: `readKey` converts it
            }
            guard let keyLength, skipPlainString(length: keyLength), skipPlainValue(depth: depth + 1) else { return false }
        }
        return true
    }
}

extension MessagePackWriter {
    /// Writes a record's value: a packed one as its bytes, as they arrived.
    public mutating func write(_ value: RecordValue) {
        switch value {
        case .decoded(let decoded): write(decoded)
        case .packed(let packed) where ObjectIdentifier(packed.format) == ObjectIdentifier(MessagePackFormat.self): writeRaw(packed.bytes)
        case .packed(let packed): write(packed.decoded)
        }
    }
}
