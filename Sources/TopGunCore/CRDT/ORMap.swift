/// An observed-remove multimap with its Merkle tree (protocol.md §3.2).
///
/// Each add carries a unique tag; a remove tombstones the tags it observed, so a
/// concurrent add (a tag the remover never saw) survives. Tombstones are kept per key as
/// well as globally, so a sync leaf can carry the tombstones of its own keys only.
public struct ORMap: Sendable {
    /// key → tag → record, live and expired records alike.
    public private(set) var items: [String: [String: ORMapRecord]] = [:]
    public private(set) var tombstones: Set<String> = []
    /// key → tombstoned tags that were observed under that key.
    public private(set) var tombstonesByKey: [String: Set<String>] = [:]
    /// tag → key, for removing a tag without knowing its key.
    private var keyByTag: [String: String] = [:]
    public private(set) var merkleTree = MerkleTree()
    /// The Merkle entry hash of each key in the tree (the tree keeps keys only).
    private var entryHashes: [String: UInt32] = [:]

    public init() {}

    /// The Merkle entry hash of `key` (nil when it holds no record).
    public func entryHash(of key: String) -> UInt32? { entryHashes[key] }

    /// Keys that hold at least one record.
    public var keys: Dictionary<String, [String: ORMapRecord]>.Keys { items.keys }

    /// Adds a remote record; returns false when its tag is already tombstoned or the same
    /// tag is already held with a timestamp at least as new.
    @discardableResult
    public mutating func apply(key: String, record: ORMapRecord) -> Bool {
        guard !tombstones.contains(record.tag) else { return false }
        if let existing = items[key]?[record.tag], !(record.timestamp > existing.timestamp) { return false }
        items[key, default: [:]][record.tag] = record
        keyByTag[record.tag] = key
        refreshMerkle(key: key)
        return true
    }

    /// Tombstones `tag`, removing its record wherever it is; `key` records where the
    /// tombstone belongs when the record has not been seen yet. Returns the key that held
    /// the tag, if any.
    @discardableResult
    public mutating func applyTombstone(tag: String, key: String? = nil) -> String? {
        let inserted = tombstones.insert(tag).inserted
        let holder = keyByTag.removeValue(forKey: tag)
        if let owner = holder ?? key {
            tombstonesByKey[owner, default: []].insert(tag)
        }
        if let holder {
            items[holder]?.removeValue(forKey: tag)
            if items[holder]?.isEmpty == true { items.removeValue(forKey: holder) }
            refreshMerkle(key: holder)
        }
        return inserted ? holder : nil
    }

    /// The OR-Map sync merge of one key: adopt all remote tombstones, drop local records
    /// they cover, then add unknown tags and replace known ones with newer timestamps.
    @discardableResult
    public mutating func mergeKey(_ key: String, records: [ORMapRecord], tombstones remoteTombstones: [String]) -> (added: Int, updated: Int) {
        for tag in remoteTombstones { applyTombstone(tag: tag, key: key) }
        var added = 0
        var updated = 0
        for record in records where !tombstones.contains(record.tag) {
            if let existing = items[key]?[record.tag] {
                if record.timestamp > existing.timestamp {
                    items[key]![record.tag] = record
                    updated += 1
                }
            } else {
                items[key, default: [:]][record.tag] = record
                keyByTag[record.tag] = key
                added += 1
            }
        }
        refreshMerkle(key: key)
        return (added, updated)
    }

    /// Merges all of `other`.
    public mutating func merge(_ other: ORMap) {
        for (key, tags) in other.tombstonesByKey {
            for tag in tags { applyTombstone(tag: tag, key: key) }
        }
        for tag in other.tombstones where !tombstones.contains(tag) { applyTombstone(tag: tag) }
        for (key, records) in other.items {
            for record in records.values { apply(key: key, record: record) }
        }
    }

    /// Live values under `key`, ordered by tag for determinism.
    public func values(forKey key: String, nowMillis: Int64) -> [DataValue] {
        records(forKey: key).filter { !$0.isExpired(nowMillis: nowMillis) }.map(\.value)
    }

    /// All stored records under `key`, ordered by tag.
    public func records(forKey key: String) -> [ORMapRecord] {
        (items[key]?.values).map { $0.sorted { String.utf16Precedes($0.tag, $1.tag) } } ?? []
    }

    /// What OR-Map sync sends for `key`: its records and its tombstones.
    public func entry(forKey key: String) -> ORMapEntry {
        ORMapEntry(
            key: key,
            records: records(forKey: key),
            tombstones: (tombstonesByKey[key] ?? []).sorted(by: String.utf16Precedes)
        )
    }

    /// Forgets tombstones whose tag (a timestamp string) is older than `cutoff`; tags that
    /// do not parse are kept. Returns the number pruned.
    @discardableResult
    public mutating func pruneTombstones(olderThan cutoff: Timestamp) -> Int {
        let expired = tombstones.filter { tag in Timestamp(tag).map { $0 < cutoff } ?? false }
        for tag in expired { tombstones.remove(tag) }
        for key in Array(tombstonesByKey.keys) {
            tombstonesByKey[key]!.subtract(expired)
            if tombstonesByKey[key]!.isEmpty { tombstonesByKey.removeValue(forKey: key) }
        }
        return expired.count
    }

    private mutating func refreshMerkle(key: String) {
        if let records = items[key], !records.isEmpty {
            let hash = MerkleEntryHash.orMap(key: key, records: records.values)
            let previous = entryHashes.updateValue(hash, forKey: key)
            merkleTree.update(key: key, entryHash: hash, previous: previous)
        } else if let previous = entryHashes.removeValue(forKey: key) {
            merkleTree.remove(key: key, entryHash: previous)
        }
    }
}
