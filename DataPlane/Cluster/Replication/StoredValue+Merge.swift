import TopGunCore

extension StoredValue {
    /// The CRDT merge of two states of one row (same key and kind): LWW keeps the newer
    /// record, OR-Map unions tags minus tombstones (all tombstones kept), PN counters take
    /// each node's maximum. Commutative, associative and idempotent, so replicas that see the
    /// same changes in any order, any number of times, agree. Returns nil when `other` adds
    /// nothing (or is of another kind).
    public func merging(_ other: StoredValue) -> StoredValue? {
        switch (self, other) {
        case (.lww(let mine), .lww(let theirs)):
            return theirs.supersedes(mine) ? other : nil
        case (.orMap(let mine), .orMap(let theirs)):
            let merged = Self.merge(mine, theirs)
            return merged == mine ? nil : .orMap(merged)
        case (.counter(var mine), .counter(let theirs)):
            return mine.merge(theirs) ? .counter(mine) : nil
        default:
            return nil
        }
    }

    /// OR-Map merge of one key's states, in a canonical order (records by tag, tombstones
    /// sorted), so equal sets compare equal.
    static func merge(_ a: ORMapEntry, _ b: ORMapEntry) -> ORMapEntry {
        let tombstones = Set(a.tombstones).union(b.tombstones)
        var byTag: [String: ORMapRecord] = [:]
        for record in a.records + b.records where !tombstones.contains(record.tag) {
            if let existing = byTag[record.tag], !(record.timestamp > existing.timestamp) { continue }
            byTag[record.tag] = record
        }
        return ORMapEntry(key: a.key, records: byTag.keys.sorted().map { byTag[$0]! }, tombstones: tombstones.sorted())
    }
}
