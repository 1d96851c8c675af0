import NIOCore

/// A read-only walk over MessagePack bytes that finds a value by its path of map keys
/// without building anything: the generator only needs a message's `type` and one or two
/// fields, and it shares the CPU with the server it measures.
struct MsgPackScan {
    let p: UnsafeRawBufferPointer

    @inline(__always) private func byte(_ i: Int) -> UInt8? { i < p.count ? p[i] : nil }

    private func uint(_ at: Int, _ size: Int) -> Int? {
        guard at + size <= p.count else { return nil }
        var v = 0
        for i in 0..<size { v = v << 8 | Int(p[at + i]) }
        return v
    }

    /// Offset just after the value at `at`.
    func skip(_ at: Int) -> Int? {
        guard let b = byte(at) else { return nil }
        switch b {
        case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: return at + 1
        case 0x80...0x8f: return skipItems(at + 1, Int(b & 0x0f) * 2)
        case 0x90...0x9f: return skipItems(at + 1, Int(b & 0x0f))
        case 0xa0...0xbf: return at + 1 + Int(b & 0x1f)
        case 0xcc, 0xd0: return at + 2
        case 0xcd, 0xd1: return at + 3
        case 0xca, 0xce, 0xd2: return at + 5
        case 0xcb, 0xcf, 0xd3: return at + 9
        case 0xd9, 0xc4: return uint(at + 1, 1).map { at + 2 + $0 }
        case 0xda, 0xc5: return uint(at + 1, 2).map { at + 3 + $0 }
        case 0xdb, 0xc6: return uint(at + 1, 4).map { at + 5 + $0 }
        case 0xdc: return uint(at + 1, 2).flatMap { skipItems(at + 3, $0) }
        case 0xdd: return uint(at + 1, 4).flatMap { skipItems(at + 5, $0) }
        case 0xde: return uint(at + 1, 2).flatMap { skipItems(at + 3, $0 * 2) }
        case 0xdf: return uint(at + 1, 4).flatMap { skipItems(at + 5, $0 * 2) }
        case 0xd4: return at + 3
        case 0xd5: return at + 4
        case 0xd6: return at + 6
        case 0xd7: return at + 10
        case 0xd8: return at + 18
        case 0xc7: return uint(at + 1, 1).map { at + 3 + $0 }
        case 0xc8: return uint(at + 1, 2).map { at + 4 + $0 }
        case 0xc9: return uint(at + 1, 4).map { at + 6 + $0 }
        default: return nil
        }
    }

    private func skipItems(_ at: Int, _ count: Int) -> Int? {
        var at = at
        for _ in 0..<count {
            guard let next = skip(at) else { return nil }
            at = next
        }
        return at
    }

    /// (offset, length) of the string at `at`.
    func string(_ at: Int) -> (Int, Int)? {
        guard let b = byte(at) else { return nil }
        switch b {
        case 0xa0...0xbf: return (at + 1, Int(b & 0x1f))
        case 0xd9: return uint(at + 1, 1).map { (at + 2, $0) }
        case 0xda: return uint(at + 1, 2).map { (at + 3, $0) }
        case 0xdb: return uint(at + 1, 4).map { (at + 5, $0) }
        default: return nil
        }
    }

    /// The number at `at` as Int64 (integers and float64, as the client writes big numbers).
    func int(_ at: Int) -> Int64? {
        guard let b = byte(at) else { return nil }
        switch b {
        case 0x00...0x7f: return Int64(b)
        case 0xe0...0xff: return Int64(Int8(bitPattern: b))
        case 0xcc: return uint(at + 1, 1).map(Int64.init)
        case 0xcd: return uint(at + 1, 2).map(Int64.init)
        case 0xce: return uint(at + 1, 4).map(Int64.init)
        case 0xcf: return uint(at + 1, 8).map { Int64(truncatingIfNeeded: $0) }
        case 0xd0: return uint(at + 1, 1).map { Int64(Int8(truncatingIfNeeded: $0)) }
        case 0xd1: return uint(at + 1, 2).map { Int64(Int16(truncatingIfNeeded: $0)) }
        case 0xd2: return uint(at + 1, 4).map { Int64(Int32(truncatingIfNeeded: $0)) }
        case 0xd3: return uint(at + 1, 8).map { Int64(truncatingIfNeeded: $0) }
        case 0xcb: return uint(at + 1, 8).map { Int64(Double(bitPattern: UInt64(truncatingIfNeeded: $0))) }
        case 0xca: return uint(at + 1, 4).map { Int64(Float(bitPattern: UInt32(truncatingIfNeeded: $0))) }
        default: return nil
        }
    }

    /// Offset of the value under `key` in the map at `at`.
    func lookup(_ at: Int, _ key: StaticString) -> Int? {
        guard let b = byte(at) else { return nil }
        var count: Int
        var pos: Int
        switch b {
        case 0x80...0x8f: count = Int(b & 0x0f); pos = at + 1
        case 0xde: guard let c = uint(at + 1, 2) else { return nil }; count = c; pos = at + 3
        case 0xdf: guard let c = uint(at + 1, 4) else { return nil }; count = c; pos = at + 5
        default: return nil
        }
        let keyLength = key.utf8CodeUnitCount
        let keyBytes = key.utf8Start
        while count > 0 {
            count -= 1
            if let (start, length) = string(pos), length == keyLength, start + length <= p.count,
               memcmp(p.baseAddress! + start, keyBytes, length) == 0 {
                return start + length
            }
            guard let afterKey = skip(pos), let afterValue = skip(afterKey) else { return nil }
            pos = afterValue
        }
        return nil
    }

    func lookup(path: [StaticString]) -> Int? {
        var at = 0
        for key in path {
            guard let next = lookup(at, key) else { return nil }
            at = next
        }
        return at
    }

    func stringEquals(_ at: Int, _ text: StaticString) -> Bool {
        guard let (start, length) = string(at), length == text.utf8CodeUnitCount, start + length <= p.count else { return false }
        return memcmp(p.baseAddress! + start, text.utf8Start, length) == 0
    }

    func stringValue(_ at: Int) -> String? {
        guard let (start, length) = string(at), start + length <= p.count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<(start + length)]), as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The message types the generator tells apart.
enum InboundKind {
    case authRequired, authAck, authFail, opAck, opRejected, error, serverEvent, queryUpdate, queryResp, pong, other
}

extension ByteBuffer {
    /// Runs `body` on a scanner over the readable bytes.
    func scan<T>(_ body: (MsgPackScan) -> T) -> T {
        withUnsafeReadableBytes { body(MsgPackScan(p: $0)) }
    }
}

func inboundKind(_ s: MsgPackScan) -> InboundKind {
    guard let t = s.lookup(0, "type") else { return .other }
    if s.stringEquals(t, "OP_ACK") { return .opAck }
    if s.stringEquals(t, "SERVER_EVENT") { return .serverEvent }
    if s.stringEquals(t, "QUERY_UPDATE") { return .queryUpdate }
    if s.stringEquals(t, "AUTH_ACK") { return .authAck }
    if s.stringEquals(t, "AUTH_REQUIRED") { return .authRequired }
    if s.stringEquals(t, "AUTH_FAIL") { return .authFail }
    if s.stringEquals(t, "QUERY_RESP") { return .queryResp }
    if s.stringEquals(t, "OP_REJECTED") { return .opRejected }
    if s.stringEquals(t, "ERROR") { return .error }
    if s.stringEquals(t, "PONG") { return .pong }
    return .other
}
