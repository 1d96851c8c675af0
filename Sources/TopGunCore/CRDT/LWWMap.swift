/// A last-write-wins map with its Merkle tree (protocol.md §3.1): the server's copy of one
/// LWW map of one tenant.
///
/// Merges keep the writer's timestamp exactly, so the client, the server and their Merkle
/// trees agree; deletes are tombstones, which win merges like any newer write.
public struct LWWMap: Sendable {
    /// What the map keeps per key: the record, and what the Merkle tree needs to change the
    /// key's contribution (the entry hash it holds for the key, and the key's leaf).
    struct Slot: Sendable {
        var record: LWWRecord
        /// The entry hash the tree holds for this key; nil until the tree has taken it in.
        var entryHash: UInt32?
        var leaf: UInt16
        /// The record changed since the tree last took it in (the entry is in `stale`).
        var isStale: Bool
        /// Where the record's last change sits in its owner's order of changes (a server's
        /// per-partition sequence; 0 when the owner keeps none). Not part of the CRDT state.
        var sequence: Int64 = 0
    }

    private var slots = KeyTable<Slot>()
    private var tree = MerkleTree()
    /// Entries (by position) whose record changed since the tree was last brought up to
    /// date. The tree is read far less often than the map is written (on a client's sync,
    /// not on every write), and a key written many times in between needs its entry hash
    /// (an FNV-1a of some 80 bytes, one byte after another) once, not once per write.
    private var stale: [Int32] = []

    /// The Merkle tree over every key (tombstones included), brought up to date first.
    public var merkleTree: MerkleTree {
        mutating get {
            refreshTree()
            return tree
        }
    }

    /// Takes every changed record into the tree: O(keys changed since the last time).
    private mutating func refreshTree() {
        var none: MerkleHashes?
        refreshTree(alsoUpdating: &none)
    }

    /// Takes every changed record into the tree, making the same change to `whole`: the hashes
    /// of a larger tree this map is a part of (a map split over partitions keeps the whole
    /// map's hashes this way, `MerkleHashes.summing` of its parts, without rebuilding them).
    public mutating func refreshTree(alsoUpdating whole: inout MerkleHashes?) {
        guard !stale.isEmpty else { return }
        for position in stale {
            let index = Int(position)
            let key = slots.entries[index].key
            let entryHash = MerkleEntryHash.lww(key: key.string, timestamp: slots[entry: index].record.timestamp)
            let leaf = Int(slots[entry: index].leaf)
            if let previous = slots[entry: index].entryHash {
                tree.replace(leaf: leaf, entryHash: entryHash, previous: previous)
                whole?.replace(leaf: leaf, entryHash: entryHash, previous: previous)
            } else {
                tree.insert(key, leaf: leaf, entryHash: entryHash)
                whole?.insert(leaf: leaf, entryHash: entryHash)
            }
            slots[entry: index].entryHash = entryHash
            slots[entry: index].isStale = false
        }
        stale.removeAll(keepingCapacity: true)
    }

    /// Whether records changed since the tree last took them in.
    public var hasStaleTree: Bool { !stale.isEmpty }

    public init() {}

    public var count: Int { slots.count }

    /// Every key and its record (tombstones and expired records included), in no order.
    public var entries: some Sequence<(key: String, record: LWWRecord)> {
        slots.entries.lazy.map { (key: $0.key.string, record: $0.value.record) }
    }

    /// Every key with its record and the sequence of its last change, in no order.
    public var sequencedEntries: some Sequence<(key: String, record: LWWRecord, sequence: Int64)> {
        slots.entries.lazy.map { (key: $0.key.string, record: $0.value.record, sequence: $0.value.sequence) }
    }

    /// Every record by key, as a new dictionary (O(n); for tests). Swift's `String` keys
    /// equate canonically equivalent strings, which the map keeps apart: of two such keys,
    /// one record is listed.
    public func recordsByKey() -> [String: LWWRecord] {
        Dictionary(slots.entries.lazy.map { ($0.key.string, $0.value.record) }, uniquingKeysWith: { first, _ in first })
    }

    /// Merges a remote record; returns whether it replaced the local one. `sequence` is kept
    /// with the record when it does.
    @discardableResult
    public mutating func merge(key: String, record: LWWRecord, sequence: Int64 = 0) -> Bool {
        let key = HashedKey(key)
        return mergeReplacing(key: key.string, hash: key.hash, record: record, sequence: sequence).merged
    }

    /// Merges a remote record; returns whether it won, and the record it replaced (nil for a
    /// new key). One table lookup, whether the key is new or not.
    public mutating func mergeReplacing(key: HashedKey, record: consuming LWWRecord) -> (merged: Bool, previous: LWWRecord?) {
        mergeReplacing(key: key.string, hash: key.hash, record: record)
    }

    /// As `mergeReplacing(key:record:)`, with the key's hash (`HashedKey(key).hash`) computed
    /// by the caller. The key is read in place, and copied into the map only when it is new.
    ///
    /// `sequence` is evaluated only when the record wins, and kept with it.
    public mutating func mergeReplacing(
        key: borrowing String, hash: Int, record: consuming LWWRecord, sequence: @autoclosure () -> Int64 = 0
    ) -> (merged: Bool, previous: LWWRecord?) {
        let head = KeyHead(key)
        let position = slots.position(of: key, hash: hash, head: head)
        switch position {
        case .found(let index):
            // Read and replaced in place: copying the slot out would copy the record.
            guard record.supersedes(slots[entry: index].record) else { return (false, nil) }
            if !slots[entry: index].isStale {
                slots[entry: index].isStale = true
                stale.append(Int32(index))
            }
            // The new record moves into the slot and the old one out: no copies.
            swap(&record, &slots[entry: index].record)
            slots[entry: index].sequence = sequence()
            return (true, record)
        case .absent:
            let leaf = MerkleTree.leafIndex(of: key)
            let index = slots.insert(
                HashedKey(copy key, hash: hash), head: head,
                value: Slot(record: record, entryHash: nil, leaf: UInt16(leaf), isStale: true, sequence: sequence()),
                at: position)
            stale.append(Int32(index))
            return (true, nil)
        }
    }

    /// The Merkle entry hash of `key` (nil when the map does not hold it).
    public func entryHash(of key: String) -> UInt32? {
        guard let slot = slots[HashedKey(key)] else { return nil }
        return slot.isStale ? MerkleEntryHash.lww(key: key, timestamp: slot.record.timestamp) : slot.entryHash
    }

    /// The stored record, tombstones and expired records included.
    public func record(forKey key: String) -> LWWRecord? { slots[HashedKey(key)]?.record }

    /// The stored record and the sequence of its last change.
    public func sequencedRecord(forKey key: String) -> (record: LWWRecord, sequence: Int64)? {
        guard let slot = slots[HashedKey(key)] else { return nil }
        return (slot.record, slot.sequence)
    }

    /// Whether the map holds `key` (a tombstone included).
    public func contains(_ key: HashedKey) -> Bool { slots[key] != nil }

    /// The live value: nil when missing, deleted or expired.
    public func value(forKey key: String, nowMillis: Int64) -> DataValue? {
        guard let record = slots[HashedKey(key)]?.record, !record.isExpired(nowMillis: nowMillis) else { return nil }
        return record.value
    }

    /// Removes tombstones older than `cutoff` (safe once every replica has seen them);
    /// returns the removed keys.
    @discardableResult
    public mutating func pruneTombstones(olderThan cutoff: Timestamp) -> [String] {
        // Removals move entries: the stale list (by position) is emptied first.
        refreshTree()
        let removed = slots.entries.compactMap { entry in entry.value.record.isTombstone && entry.value.record.timestamp < cutoff ? entry.key : nil }
        for key in removed {
            if let slot = slots.removeValue(forKey: key), let entryHash = slot.entryHash {
                tree.remove(key, leaf: Int(slot.leaf), entryHash: entryHash)
            }
        }
        return removed.map(\.string)
    }

    /// Merges every record of `other`.
    public mutating func merge(_ other: LWWMap) {
        for entry in other.slots.entries {
            _ = mergeReplacing(key: entry.key.string, hash: entry.key.hash, record: entry.value.record, sequence: entry.value.sequence)
        }
    }
}
