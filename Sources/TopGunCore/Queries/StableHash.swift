/// FNV-1a 64-bit. Unlike `Hasher`, stable across processes and nodes, which a cursor
/// checked by another server node needs.
enum StableHash {
    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
