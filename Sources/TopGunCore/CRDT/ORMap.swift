/// An observed-remove multimap with its Merkle tree (protocol.md §3.2).
///
/// Each add carries a unique tag; a remove tombstones the tags it observed, so a
/// concurrent add (a tag the remover never saw) survives. Tombstones are kept per key as
/// well as globally, so a sync leaf can carry the tombstones of its own keys only.
///
/// Keys and tags are compared byte for byte (`HashedKey`), as the client's JavaScript
/// strings and the database's rows are: with `String` keys, Swift would take "é" and
/// "e\u{301}" for one key and merge two keys that storage keeps apart.
public struct ORMap: Sendable {
    /// key → tag → record, live and expired records alike.
    private var items: [HashedKey: [HashedKey: ORMapRecord]] = [:]
    private var tombstoneSet: Set<HashedKey> = []
    /// key → tombstoned tags that were observed under that key.
    private var tombstonesByKey: [HashedKey: Set<HashedKey>] = [:]
    /// tag → key, for removing a tag without knowing its key.
    private var keyByTag: [HashedKey: String] = [:]
    public private(set) var merkleTree = MerkleTree()
    /// The Merkle entry hash of each key in the tree (the tree keeps keys only).
    private var entryHashes: [HashedKey: UInt32] = [:]
    /// Whether changes of the tree's leaves are kept for `takeLeafChanges` (for an owner that
    /// keeps a larger tree this map is a part of).
    private let reportsLeafChanges: Bool
    private var leafChanges: [(leaf: Int, before: MerkleHashes.Leaf?, after: MerkleHashes.Leaf?)] = []

    public init(reportingLeafChanges: Bool = false) {
        self.reportsLeafChanges = reportingLeafChanges
    }

    /// The leaves changed since the last call, each with what it held before and holds now
    /// (only with `reportingLeafChanges`): one change may touch the leaf of another key than
    /// the one named (a tombstone removes its tag wherever it is held).
    public mutating func takeLeafChanges() -> [(leaf: Int, before: MerkleHashes.Leaf?, after: MerkleHashes.Leaf?)] {
        guard !leafChanges.isEmpty else { return [] }
        defer { leafChanges.removeAll(keepingCapacity: true) }
        return leafChanges
    }

    /// The Merkle entry hash of `key` (nil when it holds no record).
    public func entryHash(of key: String) -> UInt32? { entryHashes[HashedKey(key)] }

    /// Keys that hold at least one record.
    public var keys: [String] { items.keys.map(\.string) }

    /// How many keys hold at least one record.
    public var keyCount: Int { items.count }

    /// Keys that hold records or tombstones: every key storage has a row for.
    public var keysWithState: [String] {
        var keys = items.keys.map(\.string)
        for key in tombstonesByKey.keys where items[key] == nil { keys.append(key.string) }
        return keys
    }

    /// Whether `key` holds records or tombstones.
    public func hasState(forKey key: String) -> Bool {
        let key = HashedKey(key)
        return items[key] != nil || tombstonesByKey[key] != nil
    }

    /// Whether `tag` is tombstoned.
    public func isTombstoned(_ tag: String) -> Bool { tombstoneSet.contains(HashedKey(tag)) }

    /// Every tombstoned tag, in JavaScript string order.
    public var tombstones: [String] { tombstoneSet.map(\.string).sorted(by: String.utf16Precedes) }

    /// The tags tombstoned under `key`, in JavaScript string order.
    public func tombstones(forKey key: String) -> [String] {
        (tombstonesByKey[HashedKey(key)] ?? []).map(\.string).sorted(by: String.utf16Precedes)
    }

    /// Adds a remote record; returns false when its tag is already tombstoned or the same
    /// tag is already held with a timestamp at least as new.
    @discardableResult
    public mutating func apply(key: String, record: ORMapRecord) -> Bool {
        let tag = HashedKey(record.tag)
        guard !tombstoneSet.contains(tag) else { return false }
        let hashedKey = HashedKey(key)
        if let existing = items[hashedKey]?[tag], !(record.timestamp > existing.timestamp) { return false }
        items[hashedKey, default: [:]][tag] = record
        keyByTag[tag] = key
        refreshMerkle(key: hashedKey)
        return true
    }

    /// Tombstones `tag`, removing its record wherever it is; `key` records where the
    /// tombstone belongs when the record has not been seen yet. Returns the key that held
    /// the tag, if any.
    @discardableResult
    public mutating func applyTombstone(tag: String, key: String? = nil) -> String? {
        let hashedTag = HashedKey(tag)
        let inserted = tombstoneSet.insert(hashedTag).inserted
        let holder = keyByTag.removeValue(forKey: hashedTag)
        if let owner = holder ?? key {
            tombstonesByKey[HashedKey(owner), default: []].insert(hashedTag)
        }
        if let holder {
            let hashedHolder = HashedKey(holder)
            items[hashedHolder]?.removeValue(forKey: hashedTag)
            if items[hashedHolder]?.isEmpty == true { items.removeValue(forKey: hashedHolder) }
            refreshMerkle(key: hashedHolder)
        }
        return inserted ? holder : nil
    }

    /// The OR-Map sync merge of one key: adopt all remote tombstones, drop local records
    /// they cover, then add unknown tags and replace known ones with newer timestamps.
    @discardableResult
    public mutating func mergeKey(_ key: String, records: [ORMapRecord], tombstones remoteTombstones: [String]) -> (added: Int, updated: Int) {
        for tag in remoteTombstones { applyTombstone(tag: tag, key: key) }
        let hashedKey = HashedKey(key)
        var added = 0
        var updated = 0
        for record in records {
            let tag = HashedKey(record.tag)
            if tombstoneSet.contains(tag) { continue }
            if let existing = items[hashedKey]?[tag] {
                if record.timestamp > existing.timestamp {
                    items[hashedKey]![tag] = record
                    updated += 1
                }
            } else {
                items[hashedKey, default: [:]][tag] = record
                keyByTag[tag] = key
                added += 1
            }
        }
        refreshMerkle(key: hashedKey)
        return (added, updated)
    }

    /// Merges all of `other`.
    public mutating func merge(_ other: ORMap) {
        for (key, tags) in other.tombstonesByKey {
            for tag in tags { applyTombstone(tag: tag.string, key: key.string) }
        }
        for tag in other.tombstoneSet where !tombstoneSet.contains(tag) { applyTombstone(tag: tag.string) }
        for (key, records) in other.items {
            for record in records.values { apply(key: key.string, record: record) }
        }
    }

    /// Live values under `key`, ordered by tag for determinism.
    public func values(forKey key: String, nowMillis: Int64) -> [DataValue] {
        records(forKey: key).filter { !$0.isExpired(nowMillis: nowMillis) }.map(\.value)
    }

    /// All stored records under `key`, ordered by tag.
    public func records(forKey key: String) -> [ORMapRecord] {
        (items[HashedKey(key)]?.values).map { $0.sorted { String.utf16Precedes($0.tag, $1.tag) } } ?? []
    }

    /// What OR-Map sync sends for `key`: its records and its tombstones.
    public func entry(forKey key: String) -> ORMapEntry {
        ORMapEntry(
            key: key,
            records: records(forKey: key),
            tombstones: tombstones(forKey: key)
        )
    }

    /// Forgets tombstones whose tag (a timestamp string) is older than `cutoff`; tags that
    /// do not parse are kept. Returns the number pruned.
    @discardableResult
    public mutating func pruneTombstones(olderThan cutoff: Timestamp) -> Int {
        let expired = tombstoneSet.filter { tag in Timestamp(tag.string).map { $0 < cutoff } ?? false }
        for tag in expired { tombstoneSet.remove(tag) }
        for key in Array(tombstonesByKey.keys) {
            tombstonesByKey[key]!.subtract(expired)
            if tombstonesByKey[key]!.isEmpty { tombstonesByKey.removeValue(forKey: key) }
        }
        return expired.count
    }

    private mutating func refreshMerkle(key: HashedKey) {
        guard reportsLeafChanges else { return updateMerkle(key: key) }
        let leaf = MerkleTree.leafIndex(of: key.string)
        let before = merkleTree.hashes.leaves[leaf]
        updateMerkle(key: key)
        let after = merkleTree.hashes.leaves[leaf]
        if before != after { leafChanges.append((leaf, before, after)) }
    }

    private mutating func updateMerkle(key: HashedKey) {
        if let records = items[key], !records.isEmpty {
            let hash = MerkleEntryHash.orMap(key: key.string, records: records.values)
            let previous = entryHashes.updateValue(hash, forKey: key)
            merkleTree.update(key: key.string, entryHash: hash, previous: previous)
        } else if let previous = entryHashes.removeValue(forKey: key) {
            merkleTree.remove(key: key.string, entryHash: previous)
        }
    }
}
