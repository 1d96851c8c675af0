/// The hashes of a Merkle tree's nodes (protocol.md §4.2), without the keys its leaves hold:
/// what a client compares while syncing (root, buckets), and what the partitions of a map
/// add up to.
///
/// Node hash = sum of mix(child hash); a leaf's hash is the sum of mix(entry hash) of its
/// keys. Because a leaf is a plain sum, the leaves of a map split over partitions add up to
/// the leaves of the whole map (`summing`); the levels above are not sums of the parts and
/// are recomputed from the summed leaves.
///
/// Storage is sparse (only nodes that exist), so one map's part in one partition, which holds
/// a few keys, costs a few entries rather than 4,096 leaves. Nodes once created are kept
/// (with hash 0 when empty), as the client does.
public struct MerkleHashes: Sendable, Equatable {
    /// A leaf that exists: its hash and how many keys it holds.
    public struct Leaf: Sendable, Equatable {
        public var hash: UInt32
        public var keyCount: Int

        public init(hash: UInt32, keyCount: Int) {
            self.hash = hash
            self.keyCount = keyCount
        }
    }

    /// By 12-bit leaf index.
    public private(set) var leaves: [Int: Leaf] = [:]
    /// By 8-bit path.
    private var level2: [Int: UInt32] = [:]
    /// By 4-bit path.
    private var level1: [Int: UInt32] = [:]
    public private(set) var rootHash: UInt32 = 0

    public init() {}

    /// The leaves of several parts of one map (every key in exactly one part) added up, and
    /// the levels above recomputed: the hashes of the tree over all their keys.
    public static func summing(_ parts: some Sequence<MerkleHashes>) -> MerkleHashes {
        var whole = MerkleHashes()
        for part in parts {
            for (index, leaf) in part.leaves {
                whole.leaves[index, default: Leaf(hash: 0, keyCount: 0)].hash &+= leaf.hash
                whole.leaves[index, default: Leaf(hash: 0, keyCount: 0)].keyCount += leaf.keyCount
            }
        }
        for (index, leaf) in whole.leaves { whole.level2[index >> 4, default: 0] &+= Hashing.mix(leaf.hash) }
        for (index, hash) in whole.level2 { whole.level1[index >> 4, default: 0] &+= Hashing.mix(hash) }
        for hash in whole.level1.values { whole.rootHash &+= Hashing.mix(hash) }
        return whole
    }

    /// The hashes of a tree whose leaves are `leaves` (the levels above computed): what
    /// another node sent of its part of a map, to be summed with the others'.
    public init(leaves: [Int: Leaf]) {
        self = Self.summing([MerkleHashes(rawLeaves: leaves)])
    }

    private init(rawLeaves: [Int: Leaf]) {
        leaves = rawLeaves.filter { $0.key >= 0 && $0.key < 1 << (4 * MerkleTree.depth) }
    }

    /// Adds a key of hash `entryHash` to leaf `leaf`, creating the nodes on its path.
    mutating func insert(leaf: Int, entryHash: UInt32) {
        let old = leaves[leaf]?.hash ?? 0
        leaves[leaf, default: Leaf(hash: 0, keyCount: 0)].keyCount += 1
        if level2[leaf >> 4] == nil { level2[leaf >> 4] = 0 }
        if level1[leaf >> 8] == nil { level1[leaf >> 8] = 0 }
        propagate(leaf: leaf, old: old, new: old &+ Hashing.mix(entryHash))
    }

    /// Changes one key's entry hash from `previous` to `entryHash` in leaf `leaf`, which holds
    /// the key.
    mutating func replace(leaf: Int, entryHash: UInt32, previous: UInt32) {
        assert(leaves[leaf] != nil, "replacing an entry of a leaf that does not exist")
        let old = leaves[leaf]?.hash ?? 0
        propagate(leaf: leaf, old: old, new: old &- Hashing.mix(previous) &+ Hashing.mix(entryHash))
    }

    /// Takes a key of hash `entryHash` out of leaf `leaf` (which stays).
    mutating func remove(leaf: Int, entryHash: UInt32) {
        let old = leaves[leaf]?.hash ?? 0
        leaves[leaf]?.keyCount -= 1
        propagate(leaf: leaf, old: old, new: old &- Hashing.mix(entryHash))
    }

    /// Moves a leaf of the whole from what one of its parts held (`old`) to what that part
    /// holds now (`new`): leaves are sums, so the whole's leaf changes by the difference.
    /// Keeps a whole (`summing`) current as a part changes, in O(1).
    public mutating func adjustLeaf(_ leaf: Int, from old: Leaf?, to new: Leaf?) {
        guard old != new, let new else { return }
        let before = leaves[leaf]?.hash ?? 0
        leaves[leaf, default: Leaf(hash: 0, keyCount: 0)].keyCount += new.keyCount - (old?.keyCount ?? 0)
        if level2[leaf >> 4] == nil { level2[leaf >> 4] = 0 }
        if level1[leaf >> 8] == nil { level1[leaf >> 8] = 0 }
        propagate(leaf: leaf, old: before, new: before &- (old?.hash ?? 0) &+ new.hash)
    }

    private mutating func propagate(leaf: Int, old: UInt32, new: UInt32) {
        guard old != new else { return }
        leaves[leaf]?.hash = new
        let l2 = leaf >> 4
        let oldL2 = level2[l2] ?? 0
        let newL2 = oldL2 &- Hashing.mix(old) &+ Hashing.mix(new)
        level2[l2] = newL2
        let l1 = l2 >> 4
        let oldL1 = level1[l1] ?? 0
        let newL1 = oldL1 &- Hashing.mix(oldL2) &+ Hashing.mix(newL2)
        level1[l1] = newL1
        rootHash = rootHash &- Hashing.mix(oldL1) &+ Hashing.mix(newL1)
    }

    /// The hash of the node at `path` ("" is the root); 0 for a missing node.
    public func hash(atPath path: String) -> UInt32 {
        guard let (level, index) = Self.node(at: path) else { return 0 }
        switch level {
        case 0: return rootHash
        case 1: return level1[index] ?? 0
        case 2: return level2[index] ?? 0
        default: return leaves[index]?.hash ?? 0
        }
    }

    /// Child hashes of the internal node at `path`, keyed by one hex digit, for the
    /// children that exist; empty for a leaf or a missing node.
    public func buckets(atPath path: String) -> [(digit: Character, hash: UInt32)] {
        guard let (level, index) = Self.node(at: path), level < MerkleTree.depth else { return [] }
        var result: [(digit: Character, hash: UInt32)] = []
        for digit in 0..<16 {
            let child = index << 4 | digit
            let hash: UInt32?
            switch level {
            case 0: hash = level1[child]
            case 1: hash = level2[child]
            default: hash = leaves[child]?.hash
            }
            if let hash { result.append((Self.hexDigits[digit], hash)) }
        }
        return result
    }

    /// Whether `path` names a leaf that holds at least one key (sync then sends records).
    public func isNonEmptyLeaf(_ path: String) -> Bool {
        guard let index = Self.leafIndex(atPath: path) else { return false }
        return (leaves[index]?.keyCount ?? 0) > 0
    }

    /// The leaf index `path` names, when it names a leaf (three hex digits).
    public static func leafIndex(atPath path: String) -> Int? {
        guard let (level, index) = node(at: path), level == MerkleTree.depth else { return nil }
        return index
    }

    /// Parses a path of up to three lower- or upper-case hex digits into (level, index).
    static func node(at path: String) -> (level: Int, index: Int)? {
        guard path.utf8.count <= MerkleTree.depth else { return nil }
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
}
