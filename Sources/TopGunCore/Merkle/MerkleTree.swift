/// The client's Merkle tree over one map (protocol.md §4.2): a depth-3 trie keyed by the
/// first three hex digits of `fnv1a(key)`, 4096 leaves holding `key → entry hash`.
///
/// Node hash = sum of mix(child hash), so an update adjusts the path from leaf to root by
/// subtracting the old contribution and adding the new one: O(1) per change, whatever the
/// size of the map. Nodes once created are kept (with hash 0 when empty), as the client does.
///
/// Leaves hold their keys only, not the keys' entry hashes: the owner of the tree knows a
/// key's current entry hash (an LWW map computes it from the record it replaces), so
/// changing an existing key touches no per-key storage at all.
public struct MerkleTree: Sendable {
    public static let depth = 3

    /// Keys per leaf, indexed by the leaf's 12-bit path.
    private var leaves: [Set<HashedKey>?]
    private var leafHashes: [UInt32]
    private var level2Hashes: [UInt32]  // 256 nodes, 8-bit path
    private var level1Hashes: [UInt32]  // 16 nodes, 4-bit path
    private var level2Exists: [Bool]
    private var level1Exists: [Bool]
    public private(set) var rootHash: UInt32 = 0
    public private(set) var count = 0

    public init() {
        leaves = Array(repeating: nil, count: 4096)
        leafHashes = Array(repeating: 0, count: 4096)
        level2Hashes = Array(repeating: 0, count: 256)
        level1Hashes = Array(repeating: 0, count: 16)
        level2Exists = Array(repeating: false, count: 256)
        level1Exists = Array(repeating: false, count: 16)
    }

    /// The 8-hex-digit routing path of a key.
    public static func path(of key: String) -> String {
        let hex = String(Hashing.fnv1a(key), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The leaf (0..<4096) that holds `key`: the top 12 bits of its FNV-1a hash.
    @inlinable
    public static func leafIndex(of key: borrowing String) -> Int { Int(Hashing.fnv1a(key) >> 20) }

    /// Sets the entry hash of `key`: `previous` is its current entry hash, nil when the key
    /// is not in the tree yet (it is then added to its leaf).
    public mutating func update(key: String, entryHash: UInt32, previous: UInt32?) {
        let leaf = Self.leafIndex(of: key)
        if let previous {
            replace(leaf: leaf, entryHash: entryHash, previous: previous)
        } else {
            insert(HashedKey(key), leaf: leaf, entryHash: entryHash)
        }
    }

    /// Adds `key` (in leaf `leaf`, which must be `leafIndex(of: key.string)`) with its entry
    /// hash. A key already in the tree is left as it is.
    public mutating func insert(_ key: HashedKey, leaf: Int, entryHash: UInt32) {
        if leaves[leaf] == nil { leaves[leaf] = [] }
        // In place: copying the leaf out and back would copy its set on every insert.
        guard leaves[leaf]!.insert(key).inserted else { return }
        count += 1
        level2Exists[leaf >> 4] = true
        level1Exists[leaf >> 8] = true
        let old = leafHashes[leaf]
        propagate(leaf: leaf, old: old, new: old &+ Hashing.mix(entryHash))
    }

    /// Changes the entry hash of a key of leaf `leaf` from `previous` to `entryHash`. The
    /// leaf's key set is not touched: the caller knows the key is there.
    public mutating func replace(leaf: Int, entryHash: UInt32, previous: UInt32) {
        let old = leafHashes[leaf]
        propagate(leaf: leaf, old: old, new: old &- Hashing.mix(previous) &+ Hashing.mix(entryHash))
    }

    /// Removes `key`, whose current entry hash is `entryHash`; its leaf (now perhaps empty)
    /// stays.
    public mutating func remove(key: String, entryHash: UInt32) {
        remove(HashedKey(key), leaf: Self.leafIndex(of: key), entryHash: entryHash)
    }

    /// Removes `key` of leaf `leaf`, whose current entry hash is `entryHash`.
    public mutating func remove(_ key: HashedKey, leaf: Int, entryHash: UInt32) {
        guard leaves[leaf] != nil, leaves[leaf]!.remove(key) != nil else { return }
        count -= 1
        let old = leafHashes[leaf]
        propagate(leaf: leaf, old: old, new: old &- Hashing.mix(entryHash))
    }

    private mutating func propagate(leaf: Int, old: UInt32, new: UInt32) {
        guard old != new else { return }
        leafHashes[leaf] = new
        let l2 = leaf >> 4
        let oldL2 = level2Hashes[l2]
        let newL2 = oldL2 &- Hashing.mix(old) &+ Hashing.mix(new)
        level2Hashes[l2] = newL2
        let l1 = l2 >> 4
        let oldL1 = level1Hashes[l1]
        let newL1 = oldL1 &- Hashing.mix(oldL2) &+ Hashing.mix(newL2)
        level1Hashes[l1] = newL1
        rootHash = rootHash &- Hashing.mix(oldL1) &+ Hashing.mix(newL1)
    }

    /// Whether `key` is in the tree.
    public func contains(_ key: String) -> Bool {
        leaves[Self.leafIndex(of: key)]?.contains(HashedKey(key)) ?? false
    }

    /// Parses a path of up to three lower- or upper-case hex digits into (level, index).
    static func node(at path: String) -> (level: Int, index: Int)? {
        guard path.utf8.count <= Self.depth else { return nil }
        var index = 0
        for unit in path.utf8 {
            guard let digit = hexValue(unit) else { return nil }
            index = index << 4 | digit
        }
        return (path.utf8.count, index)
    }

    private static func hexValue(_ unit: UInt8) -> Int? {
        switch unit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(unit - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(unit - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(unit - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private static let hexDigits: [Character] = Array("0123456789abcdef")

    /// The hash of the node at `path` ("" is the root); 0 for a missing node.
    public func hash(atPath path: String) -> UInt32 {
        guard let (level, index) = Self.node(at: path) else { return 0 }
        switch level {
        case 0: return rootHash
        case 1: return level1Hashes[index]
        case 2: return level2Hashes[index]
        default: return leafHashes[index]
        }
    }

    /// Child hashes of the internal node at `path`, keyed by one hex digit, for the
    /// children that exist; empty for a leaf or a missing node.
    public func buckets(atPath path: String) -> [(digit: Character, hash: UInt32)] {
        guard let (level, index) = Self.node(at: path), level < Self.depth else { return [] }
        var result: [(digit: Character, hash: UInt32)] = []
        for digit in 0..<16 {
            let child = index << 4 | digit
            switch level {
            case 0: if level1Exists[child] { result.append((Self.hexDigits[digit], level1Hashes[child])) }
            case 1: if level2Exists[child] { result.append((Self.hexDigits[digit], level2Hashes[child])) }
            default: if leaves[child] != nil { result.append((Self.hexDigits[digit], leafHashes[child])) }
            }
        }
        return result
    }

    /// Whether `path` names a leaf that holds at least one key (sync then sends records).
    public func isNonEmptyLeaf(_ path: String) -> Bool {
        guard let (level, index) = Self.node(at: path), level == Self.depth else { return false }
        return !(leaves[index]?.isEmpty ?? true)
    }

    /// The keys in the leaf at `path` (empty unless `path` has three hex digits).
    public func keys(inLeaf path: String) -> [String] {
        guard let (level, index) = Self.node(at: path), level == Self.depth else { return [] }
        return leaves[index].map { $0.map(\.string) } ?? []
    }
}
