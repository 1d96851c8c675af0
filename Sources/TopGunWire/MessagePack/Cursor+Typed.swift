import TopGunCore

/// Typed reads straight from the bytes, for the hot path (`OP_BATCH`), which skips the
/// intermediate `DataValue` tree. Each read returns nil on anything unexpected: the caller
/// then falls back to the general decoder, which produces the precise, field-named error.
extension Cursor {
    /// Reads a map header; nil (position unchanged) when the next value is not a map.
    @inline(__always)
    mutating func readMapCount() -> Int? {
        guard position < base.count else { return nil }
        let byte = base[position]
        let count: Int
        switch byte {
        case 0x80...0x8f:
            count = Int(byte & 0x0f)
            position += 1
        case 0xde:
            guard remaining >= 3 else { return nil }
            count = Int(base[position + 1]) << 8 | Int(base[position + 2])
            position += 3
        case 0xdf:
            guard remaining >= 5 else { return nil }
            count = Int(base[position + 1]) << 24 | Int(base[position + 2]) << 16 | Int(base[position + 3]) << 8 | Int(base[position + 4])
            position += 5
        default:
            return nil
        }
        guard count <= limits.maxContainerCount, count <= remaining / 2 else { return nil }
        return count
    }

    @inline(__always)
    mutating func readArrayCount() -> Int? {
        guard position < base.count else { return nil }
        let byte = base[position]
        let count: Int
        switch byte {
        case 0x90...0x9f:
            count = Int(byte & 0x0f)
            position += 1
        case 0xdc:
            guard remaining >= 3 else { return nil }
            count = Int(base[position + 1]) << 8 | Int(base[position + 2])
            position += 3
        case 0xdd:
            guard remaining >= 5 else { return nil }
            count = Int(base[position + 1]) << 24 | Int(base[position + 2]) << 16 | Int(base[position + 3]) << 8 | Int(base[position + 4])
            position += 5
        default:
            return nil
        }
        guard count <= limits.maxContainerCount, count <= remaining else { return nil }
        return count
    }

    /// The bytes of a string (a map key, usually) without making a `String`.
    @inline(__always)
    mutating func readRawString() -> UnsafeBufferPointer<UInt8>? {
        guard position < base.count else { return nil }
        let byte = base[position]
        let length: Int
        let header: Int
        switch byte {
        case 0xa0...0xbf:
            length = Int(byte & 0x1f); header = 1
        case 0xd9:
            guard remaining >= 2 else { return nil }
            length = Int(base[position + 1]); header = 2
        case 0xda:
            guard remaining >= 3 else { return nil }
            length = Int(base[position + 1]) << 8 | Int(base[position + 2]); header = 3
        default:
            return nil
        }
        guard remaining >= header + length else { return nil }
        let start = position + header
        position = start + length
        return UnsafeBufferPointer(rebasing: base[start..<(start + length)])
    }

    @inline(__always)
    mutating func readStringValue() -> String? {
        guard let raw = readRawString() else { return nil }
        return UTF8Text.string(raw)
    }

    /// A string that often repeats (node ids): reuses `cache` when the bytes are equal, which
    /// saves an allocation per op for ids longer than 15 bytes.
    @inline(__always)
    mutating func readRepeatedString(cache: inout String) -> String? {
        guard let raw = readRawString() else { return nil }
        var matches = false
        cache.utf8.withContiguousStorageIfAvailable { cached in
            matches = cached.count == raw.count && (raw.count == 0 || memcmp(cached.baseAddress!, raw.baseAddress!, raw.count) == 0)
        }
        if matches { return cache }
        guard let string = UTF8Text.string(raw) else { return nil }
        cache = string
        return string
    }

    @inline(__always)
    mutating func readNilIfPresent() -> Bool {
        if position < base.count, base[position] == 0xc0 {
            position += 1
            return true
        }
        return false
    }

    /// Any integer, or a whole float (msgpackr writes large integers as float64).
    mutating func readInteger() -> Int64? {
        let start = position
        guard let value = try? readValue(depth: limits.maxDepth - 1) else {
            position = start
            return nil
        }
        switch value {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d)
        default:
            position = start
            return nil
        }
    }

    mutating func readNumber() -> Double? {
        let start = position
        guard let value = try? readValue(depth: limits.maxDepth - 1), let number = value.doubleValue else {
            position = start
            return nil
        }
        return number
    }

    mutating func readBoolValue() -> Bool? {
        guard position < base.count else { return nil }
        switch base[position] {
        case 0xc2: position += 1; return false
        case 0xc3: position += 1; return true
        default: return nil
        }
    }

    /// Steps over a member the fast path does not read. Ignored or not, every string of a frame
    /// must be valid UTF-8, member names included: known names are matched byte for byte
    /// against ASCII literals, so only an ignored name needs checking, and `skipPlainValue`
    /// checks the strings of the value. False for anything unusual (the general decoder then
    /// decides).
    @inline(__always)
    mutating func skipIgnoredMember(name: UnsafeBufferPointer<UInt8>, depth: Int) -> Bool {
        UTF8Text.isWellFormed(name) && skipPlainValue(depth: depth)
    }

    /// Steps over one value of any kind by its structure alone, with the depth and size checks
    /// of reading it but without checking strings: for finding where a value ends when its
    /// content is already known to be bad (`OpByOpDecoder`).
    mutating func skipValue(depth: Int) -> Bool {
        guard position < base.count else { return false }
        let byte = base[position]
        position += 1
        func skip(_ n: Int) -> Bool {
            guard n >= 0, n <= remaining else { return false }
            position += n
            return true
        }
        func be(_ size: Int) -> Int? {
            guard remaining >= size else { return nil }
            var value = 0
            for i in 0..<size { value = value << 8 | Int(base[position + i]) }
            position += size
            return value
        }
        switch byte {
        case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: return true
        case 0x80...0x8f: return skipEntries(Int(byte & 0x0f) * 2, depth: depth)
        case 0x90...0x9f: return skipEntries(Int(byte & 0x0f), depth: depth)
        case 0xa0...0xbf: return skip(Int(byte & 0x1f))
        case 0xc4, 0xd9: return be(1).map(skip) ?? false
        case 0xc5, 0xda: return be(2).map(skip) ?? false
        case 0xc6, 0xdb: return be(4).map(skip) ?? false
        case 0xc7: return be(1).map { skip($0 + 1) } ?? false
        case 0xc8: return be(2).map { skip($0 + 1) } ?? false
        case 0xc9: return be(4).map { skip($0 + 1) } ?? false
        case 0xca: return skip(4)
        case 0xcb: return skip(8)
        case 0xcc, 0xd0: return skip(1)
        case 0xcd, 0xd1: return skip(2)
        case 0xce, 0xd2: return skip(4)
        case 0xcf, 0xd3: return skip(8)
        case 0xd4: return skip(2)
        case 0xd5: return skip(3)
        case 0xd6: return skip(5)
        case 0xd7: return skip(9)
        case 0xd8: return skip(17)
        case 0xdc: return be(2).map { skipEntries($0, depth: depth) } ?? false
        case 0xdd: return be(4).map { skipEntries($0, depth: depth) } ?? false
        case 0xde: return be(2).map { skipEntries($0 * 2, depth: depth) } ?? false
        case 0xdf: return be(4).map { skipEntries($0 * 2, depth: depth) } ?? false
        default: return false  // 0xc1
        }
    }

    /// The elements of a container at `depth` (a map's keys and values alike); as in
    /// `readValue`, the depth limit applies to containers, not to scalars.
    private mutating func skipEntries(_ count: Int, depth: Int) -> Bool {
        guard depth < limits.maxDepth, count <= remaining else { return false }
        for _ in 0..<count where !skipValue(depth: depth + 1) { return false }
        return true
    }
}

/// Compares raw key bytes with an ASCII literal.
@inline(__always)
func keyEquals(_ raw: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
    raw.count == literal.utf8CodeUnitCount && (raw.count == 0 || memcmp(raw.baseAddress!, literal.utf8Start, raw.count) == 0)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
