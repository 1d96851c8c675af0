/// The hash functions the TopGun client uses for Merkle trees and partitions (protocol.md §4.1).
public enum Hashing {
    /// FNV-1a 32-bit over the UTF-16 code units of `string`, as JavaScript's `charCodeAt`
    /// sees them (a character outside the BMP contributes its two surrogates).
    @inlinable
    public static func fnv1a(_ string: borrowing String) -> UInt32 {
        var hasher = FNV1a()
        hasher.add(string)
        return hasher.value
    }

    /// MurmurHash3's fmix32 finaliser. `mix(0) == 0`, so empty nodes stay neutral.
    @inlinable
    public static func mix(_ value: UInt32) -> UInt32 {
        var h = value
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    /// The HEAD client's combine: the wrapping sum of the mixed hashes. Order-independent,
    /// which is what lets the tree update one child without looking at its siblings.
    @inlinable
    public static func combine<S: Sequence>(_ hashes: S) -> UInt32 where S.Element == UInt32 {
        hashes.reduce(0) { $0 &+ mix($1) }
    }
}

/// FNV-1a 32-bit fed piece by piece, so a hash of several parts (the Merkle entry hash of a
/// key and its timestamp) needs no joined string. Same result as `Hashing.fnv1a` of the
/// concatenation.
public struct FNV1a: Sendable {
    @usableFromInline
    var state: UInt32 = 0x811c_9dc5

    /// The hash of everything added so far.
    @inlinable
    public var value: UInt32 { state }

    @inlinable
    public init() {}

    /// The UTF-16 code units of `string`, as JavaScript's `charCodeAt` sees them. ASCII (by
    /// far the common case for keys, ids and numbers) is hashed straight from the UTF-8
    /// bytes, which are then the same units.
    ///
    /// Borrowed and read in place: a copy of the string would retain its storage, and a node
    /// id's storage is shared by every record of its client, so its reference count is
    /// contended between the event loops.
    @inlinable
    public mutating func add(_ string: borrowing String) {
        let initial = state
        let ascii = string.utf8.withContiguousStorageIfAvailable { bytes in
            var hash = initial
            for byte in bytes {
                if byte >= 0x80 { return false }
                hash ^= UInt32(byte)
                hash = hash &* 0x0100_0193
            }
            state = hash
            return true
        }
        if ascii == true { return }
        for unit in string.utf16 { add(unit: unit) }
    }

    @inlinable
    public mutating func add(unit: UInt16) {
        state ^= UInt32(unit)
        state = state &* 0x0100_0193
    }

    /// `String(number)`'s digits (and sign).
    ///
    /// Digits are produced last first, dividing by the constant 10 (a multiplication once
    /// compiled), into a small buffer, then hashed first to last: dividing by a variable
    /// power of ten per digit cost a hardware division each, and every write hashes a
    /// 13-digit millisecond time.
    @inlinable
    public mutating func add(decimal number: Int64) {
        if number < 0 { add(unit: 0x2d) }
        var rest = number.magnitude
        // 20 digits hold any UInt64.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = 0x30 &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            var hash = state
            for index in start..<20 {
                hash ^= UInt32(digits[index])
                hash = hash &* 0x0100_0193
            }
            state = hash
        }
    }
}
