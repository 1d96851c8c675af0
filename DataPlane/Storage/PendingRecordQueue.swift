/// The rows a write-behind queue has not flushed yet, oldest first, one per row identity.
///
/// A later write to a queued row replaces its record in place and keeps the row's place and
/// first ticket: the newer CRDT state is a superset of the older, so writing it covers both
/// writes, and the row is due as early as its first write was. Entries stay in order of
/// their first ticket (places never move; failed entries are merged back in order), so the
/// first entry holds the oldest ticket not yet written, which is what the durability
/// watermark needs (see `WriteBehindStateMachine`).
struct PendingRecordQueue<Instant: Comparable & Sendable>: Sendable {
    struct Entry: Sendable {
        var record: StoredRecord
        /// The oldest not-yet-durable ticket this row's record covers.
        var firstTicket: UInt64
        /// When the row was first queued (drives the flush interval).
        var enqueuedAt: Instant
    }

    /// Entries by place; a place is `base + index`.
    private var entries: [Entry] = []
    /// Places before `head` were taken.
    private var head = 0
    /// The place of each identity still queued, counted from the queue's creation so that
    /// compacting `entries` does not rewrite it.
    private var places: [RecordIdentity: Int] = [:]
    private var base = 0

    var count: Int { entries.count - head }
    var isEmpty: Bool { count == 0 }
    var first: Entry? { head < entries.count ? entries[head] : nil }

    /// Queues `record` under `ticket`, or replaces the queued record of its row. Returns
    /// whether it took a new place.
    @discardableResult
    mutating func insert(_ record: StoredRecord, ticket: UInt64, now: Instant) -> Bool {
        let identity = record.identity
        if let place = places[identity] {
            entries[place - base].record = Self.newer(record, replacing: entries[place - base].record)
            return false
        }
        places[identity] = base + entries.count
        entries.append(Entry(record: record, firstTicket: ticket, enqueuedAt: now))
        return true
    }

    /// Removes and returns up to `limit` oldest entries, passing over (and keeping in their
    /// places) those whose identity is in `excluded`: rows that are being flushed, which must
    /// not be written by two flushes at once.
    mutating func removeFirst(upTo limit: Int, excluding excluded: Set<RecordIdentity> = []) -> [Entry] {
        // Usually nothing queued is in flight: look through the smaller side to find out.
        let overlaps = excluded.count <= count
            ? excluded.contains { places[$0] != nil }
            : entries[head...].contains { excluded.contains($0.record.identity) }
        guard overlaps else { return removeFirst(upTo: limit) }
        var taken: [Entry] = []
        var kept: [Entry] = []
        for entry in entries[head...] {
            if taken.count < limit && !excluded.contains(entry.record.identity) {
                taken.append(entry)
            } else {
                kept.append(entry)
            }
        }
        rebuild(kept)
        return taken
    }

    private mutating func removeFirst(upTo limit: Int) -> [Entry] {
        let end = head + min(limit, count)
        if head == 0 && end == entries.count {
            // Everything: hand the storage over without copying.
            let taken = entries
            base += entries.count
            entries = []
            places.removeAll(keepingCapacity: true)
            return taken
        }
        let taken = Array(entries[head..<end])
        for entry in taken { places[entry.record.identity] = nil }
        head = end
        if head > 1_024 && head * 2 > entries.count {
            entries.removeFirst(head)
            base += head
            head = 0
        }
        return taken
    }

    /// Drops the queued entries whose record matches (a purged tenant's, a fenced
    /// partition's); the rest keep their order. Returns the dropped entries.
    @discardableResult
    mutating func removeAll(where shouldRemove: (StoredRecord) -> Bool) -> [Entry] {
        var kept: [Entry] = []
        var removed: [Entry] = []
        for entry in entries[head...] {
            if shouldRemove(entry.record) { removed.append(entry) } else { kept.append(entry) }
        }
        if !removed.isEmpty { rebuild(kept) }
        return removed
    }

    /// Puts entries whose flush failed back among the queued ones, in first-ticket order.
    /// Where a newer write to the same row was queued meanwhile, that newer record (a
    /// superset) replaces the old one, which keeps its place and first ticket. Returns the
    /// queued entries that were replaced that way.
    @discardableResult
    mutating func putBack(_ failed: [Entry]) -> [Entry] {
        guard !failed.isEmpty else { return [] }
        var failed = failed
        var superseded = Set<Int>()
        var replaced: [Entry] = []
        for index in failed.indices {
            if let place = places[failed[index].record.identity] {
                failed[index].record = Self.newer(entries[place - base].record, replacing: failed[index].record)
                superseded.insert(place)
                replaced.append(entries[place - base])
            }
        }
        // Both runs are sorted by first ticket: merge them.
        var merged: [Entry] = []
        merged.reserveCapacity(failed.count + count)
        var next = failed.makeIterator()
        var pending = next.next()
        for index in head..<entries.count where !superseded.contains(base + index) {
            let queued = entries[index]
            while let entry = pending, entry.firstTicket <= queued.firstTicket {
                merged.append(entry)
                pending = next.next()
            }
            merged.append(queued)
        }
        while let entry = pending {
            merged.append(entry)
            pending = next.next()
        }
        rebuild(merged)
        return replaced
    }

    private mutating func rebuild(_ newEntries: [Entry]) {
        base += entries.count
        entries = newEntries
        head = 0
        places.removeAll(keepingCapacity: true)
        for (index, entry) in entries.enumerated() {
            places[entry.record.identity] = base + index
        }
    }

    /// `newer` in place of `older`. The row is still unwritten, so if either write knew the
    /// storage had no row for it, none has appeared since.
    private static func newer(_ newer: StoredRecord, replacing older: StoredRecord) -> StoredRecord {
        var record = newer
        record.mayExistInStorage = newer.mayExistInStorage && older.mayExistInStorage
        return record
    }
}
