import TopGunCore

/// What an owner has sent its backups and what they acknowledged (pure; the `Replicator`
/// performs it). Every batch of changes gets a number; each backup of the batch's partitions
/// is sent the rows of its partitions, in order, coalesced while a send is under way; a batch
/// is replicated once every backup it was meant for has acknowledged it (or left the table).
/// A failed send is retried: the rows go back in front of what is waiting.
public struct ReplicationLog: Sendable {
    /// Rows waiting for one backup, with the batch of their latest change.
    struct Outgoing: Sendable {
        var rows: [StoredRecord] = []
        var through: UInt64 = 0
        /// Partitions whose snapshot ends with these rows.
        var completesSnapshots: Set<Int> = []
    }

    public private(set) var lastBatch: UInt64 = 0
    /// Per backup: rows not yet sent.
    private var outgoing: [NodeID: Outgoing] = [:]
    /// Per backup: a send under way (its batch number).
    private var inFlight: [NodeID: UInt64] = [:]
    /// Per backup: everything up to here was acknowledged.
    public private(set) var acknowledged: [NodeID: UInt64] = [:]
    /// Batches not yet replicated, with the backups still to acknowledge them.
    private var waiting: [UInt64: Set<NodeID>] = [:]

    public init() {}

    /// Records a batch of changes: `backups(partition)` names who must get each row. Returns
    /// the batch's number (replicated at once when no row has a backup).
    public mutating func record(_ rows: [StoredRecord], backups: (Int) -> [NodeID]) -> UInt64 {
        lastBatch += 1
        var targets = Set<NodeID>()
        for row in rows {
            for backup in backups(row.partition) {
                outgoing[backup, default: Outgoing()].rows.append(row)
                outgoing[backup]!.through = lastBatch
                targets.insert(backup)
            }
        }
        if !targets.isEmpty { waiting[lastBatch] = targets }
        return lastBatch
    }

    /// Queues a partition's snapshot for `backup` (a new backup or migration target): its
    /// last rows mark the snapshot complete. Returns the batch that completes it.
    public mutating func recordSnapshot(_ rows: [StoredRecord], partition: Int, for backup: NodeID) -> UInt64 {
        lastBatch += 1
        var queued = outgoing[backup] ?? Outgoing()
        queued.rows += rows
        queued.through = lastBatch
        queued.completesSnapshots.insert(partition)
        outgoing[backup] = queued
        waiting[lastBatch] = [backup]
        return lastBatch
    }

    /// The next send to `backup`, unless one is under way or nothing waits.
    public mutating func nextSend(to backup: NodeID) -> (through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>)? {
        guard inFlight[backup] == nil, let queued = outgoing.removeValue(forKey: backup), queued.through > 0 else { return nil }
        inFlight[backup] = queued.through
        return (queued.through, queued.rows, queued.completesSnapshots)
    }

    /// Backups with rows waiting and no send under way.
    public var backupsReadyToSend: [NodeID] {
        outgoing.keys.filter { inFlight[$0] == nil }.sorted()
    }

    /// `backup` applied everything up to `through`; returns the batches now replicated.
    public mutating func acknowledged(_ backup: NodeID, through: UInt64) -> [UInt64] {
        if inFlight[backup] == through { inFlight[backup] = nil }
        acknowledged[backup] = max(acknowledged[backup] ?? 0, through)
        var done: [UInt64] = []
        for (batch, pending) in waiting where batch <= through && pending.contains(backup) {
            var left = pending
            left.remove(backup)
            if left.isEmpty {
                waiting[batch] = nil
                done.append(batch)
            } else {
                waiting[batch] = left
            }
        }
        return done.sorted()
    }

    /// A send to `backup` failed: its rows go back in front, to be sent again (unless the
    /// backup was forgotten meanwhile: nothing is sent to it any more).
    public mutating func sendFailed(_ backup: NodeID, through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>) {
        guard inFlight[backup] == through else { return }
        inFlight[backup] = nil
        var queued = outgoing[backup] ?? Outgoing()
        queued.rows = rows + queued.rows
        queued.through = max(queued.through, through)
        queued.completesSnapshots.formUnion(completesSnapshots)
        outgoing[backup] = queued
    }

    /// `backup` is no longer a backup of anything here: nothing waits for it any more.
    /// Returns the batches this makes replicated.
    public mutating func forget(_ backup: NodeID) -> [UInt64] {
        outgoing[backup] = nil
        inFlight[backup] = nil
        acknowledged[backup] = nil
        var done: [UInt64] = []
        for (batch, pending) in waiting where pending.contains(backup) {
            var left = pending
            left.remove(backup)
            if left.isEmpty {
                waiting[batch] = nil
                done.append(batch)
            } else {
                waiting[batch] = left
            }
        }
        return done.sorted()
    }

    /// Every backup something is queued for, in flight to, acknowledged by or waited on.
    public var backups: Set<NodeID> {
        var all = Set(outgoing.keys).union(inFlight.keys).union(acknowledged.keys)
        for pending in waiting.values { all.formUnion(pending) }
        return all
    }

    /// Whether `batch` is replicated (every backup it was meant for acknowledged it).
    public func isReplicated(_ batch: UInt64) -> Bool {
        batch <= lastBatch && waiting[batch] == nil
    }
}
