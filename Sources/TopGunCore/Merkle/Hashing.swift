/// The hash functions the TopGun client uses for Merkle trees and partitions (protocol.md §4.1).
public enum Hashing {
    /// FNV-1a 32-bit over the UTF-16 code units of `string`, as JavaScript's `charCodeAt`
    /// sees them (a character outside the BMP contributes its two surrogates).
    @inlinable
    public static func fnv1a(_ string: String) -> UInt32 {
        var hash: UInt32 = 0x811c_9dc5
        for unit in string.utf16 {
            hash ^= UInt32(unit)
            hash = hash &* 0x0100_0193
        }
        return hash
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
