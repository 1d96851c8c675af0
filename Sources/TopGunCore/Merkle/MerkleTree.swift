/// The client's Merkle tree over one map (protocol.md §4.2): a depth-3 trie keyed by the
/// first three hex digits of `fnv1a(key)`, 4096 leaves holding `key → entry hash`.
///
/// An update adjusts the path from leaf to root by subtracting the old contribution and
/// adding the new one (`MerkleHashes`): O(1) per change, whatever the size of the map.
///
/// Leaves hold their keys only, not the keys' entry hashes: the owner of the tree knows a
/// key's current entry hash (an LWW map computes it from the record it replaces), so
/// changing an existing key touches no per-key storage at all.
public struct MerkleTree: Sendable {
    public static let depth = 3

    /// Keys per leaf that exists, by the leaf's 12-bit index.
    private var leaves: [Int: Set<HashedKey>] = [:]
    /// The nodes' hashes.
    public private(set) var hashes = MerkleHashes()
    public var rootHash: UInt32 { hashes.rootHash }
    public private(set) var count = 0

    public init() {}

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
        // In place: copying the leaf out and back would copy its set on every insert.
        guard leaves[leaf, default: []].insert(key).inserted else { return }
        count += 1
        hashes.insert(leaf: leaf, entryHash: entryHash)
    }

    /// Changes the entry hash of a key of leaf `leaf` from `previous` to `entryHash`. The
    /// leaf's key set is not touched: the caller knows the key is there.
    public mutating func replace(leaf: Int, entryHash: UInt32, previous: UInt32) {
        hashes.replace(leaf: leaf, entryHash: entryHash, previous: previous)
    }

    /// Removes `key`, whose current entry hash is `entryHash`; its leaf (now perhaps empty)
    /// stays.
    public mutating func remove(key: String, entryHash: UInt32) {
        remove(HashedKey(key), leaf: Self.leafIndex(of: key), entryHash: entryHash)
    }

    /// Removes `key` of leaf `leaf`, whose current entry hash is `entryHash`.
    public mutating func remove(_ key: HashedKey, leaf: Int, entryHash: UInt32) {
        guard leaves[leaf]?.remove(key) != nil else { return }
        count -= 1
        hashes.remove(leaf: leaf, entryHash: entryHash)
    }

    /// Whether `key` is in the tree.
    public func contains(_ key: String) -> Bool {
        leaves[Self.leafIndex(of: key)]?.contains(HashedKey(key)) ?? false
    }

    /// The hash of the node at `path` ("" is the root); 0 for a missing node.
    public func hash(atPath path: String) -> UInt32 { hashes.hash(atPath: path) }

    /// Child hashes of the internal node at `path`, keyed by one hex digit, for the
    /// children that exist; empty for a leaf or a missing node.
    public func buckets(atPath path: String) -> [(digit: Character, hash: UInt32)] { hashes.buckets(atPath: path) }

    /// Whether `path` names a leaf that holds at least one key (sync then sends records).
    public func isNonEmptyLeaf(_ path: String) -> Bool { hashes.isNonEmptyLeaf(path) }

    /// The keys in the leaf at `path` (empty unless `path` has three hex digits).
    public func keys(inLeaf path: String) -> [String] {
        guard let index = MerkleHashes.leafIndex(atPath: path) else { return [] }
        return leaves[index].map { $0.map(\.string) } ?? []
    }
}
