/// Strings from UTF-8 bytes that must be valid, the common case first.
enum UTF8Text {
    /// The string the bytes spell, or nil when they are not valid UTF-8. ASCII (keys, ids,
    /// most values) needs no decoding: it is checked eight bytes at a time and built without
    /// the generic validation of `String(validating:as:)`, which costs a metadata lookup.
    @inline(__always)
    static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    @inline(__always)
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let start = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(start)
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < count {
            if start[index] >= 0x80 { return false }
            index += 1
        }
        return true
    }

    /// Whether the bytes are valid UTF-8, ASCII (the common case) checked first, eight bytes at
    /// a time.
    @inline(__always)
    static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        isASCII(bytes) || isValid(bytes)
    }

    /// Whether the bytes are valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF),
    /// as `String(validating:as:)` decides, without building a string.
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xbf  // allowed range of the second byte
            switch lead {
            case 0xc2...0xdf: length = 2
            case 0xe0: length = 3; low = 0xa0
            case 0xe1...0xec, 0xee, 0xef: length = 3
            case 0xed: length = 3; high = 0x9f  // no surrogates
            case 0xf0: length = 4; low = 0x90
            case 0xf1...0xf3: length = 4
            case 0xf4: length = 4; high = 0x8f  // nothing above U+10FFFF
            default: return false
            }
            guard index + length <= count, bytes[index + 1] >= low, bytes[index + 1] <= high else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xc0 != 0x80 { return false }
            index += length
        }
        return true
    }
}
