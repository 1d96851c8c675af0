import TopGunCore

/// What an owner has sent its backups and what they acknowledged (pure; the `Replicator`
/// performs it). Every batch of changes gets a number; each backup of the batch's partitions
/// is sent the rows of its partitions, in order, coalesced while a send is under way; a batch
/// is replicated once every backup it was meant for has acknowledged it (or left the table,
/// as long as one of them acknowledged it: a batch whose backups all left unacknowledged is
/// not replicated anywhere).
/// A failed send is retried: the rows go back in front of what is waiting.
public struct ReplicationLog: Sendable {
    /// Rows waiting for one backup, in batches (oldest first).
    struct Outgoing: Sendable {
        struct Chunk: Sendable {
            var batch: UInt64
            var rows: [StoredRecord]
            /// Partitions whose snapshot ends with these rows.
            var completesSnapshots: Set<Int> = []
        }
        var chunks: [Chunk] = []
        var rowCount = 0
    }

    /// Most rows one send carries (whole batches, at least one): a send is one cluster
    /// frame, and a backup that falls behind must catch up in bounded steps.
    public static let maxRowsPerSend = 4_000
    /// A snapshot is cut into batches of at most this many rows.
    public static let snapshotRowsPerBatch = 2_000

    public private(set) var lastBatch: UInt64 = 0
    /// Per backup: rows not yet sent.
    private var outgoing: [NodeID: Outgoing] = [:]
    /// Per backup: a send under way (its batch number).
    private var inFlight: [NodeID: UInt64] = [:]
    /// Per backup: everything up to here was acknowledged.
    public private(set) var acknowledged: [NodeID: UInt64] = [:]
    /// Batches not yet replicated, with the backups still to acknowledge them.
    private var waiting: [UInt64: Set<NodeID>] = [:]
    /// Waiting batches that some backup has acknowledged already.
    private var partlyAcknowledged: Set<UInt64> = []
    /// Batches whose every backup left the table before acknowledging them: no copy holds
    /// them, so they are not replicated (a REPLICATED write then waits for its commit).
    /// Only the last `unreplicatedKept` batch numbers are remembered: a write asks about its
    /// batch right after recording it.
    private var unreplicated: Set<UInt64> = []
    static let unreplicatedKept: UInt64 = 1 << 16

    public init() {}

    /// Records a batch of changes: `backups(partition)` names who must get each row. Returns
    /// the batch's number (replicated at once when no row has a backup).
    public mutating func record(_ rows: [StoredRecord], backups: (Int) -> [NodeID]) -> UInt64 {
        lastBatch += 1
        var perBackup: [NodeID: [StoredRecord]] = [:]
        for row in rows {
            for backup in backups(row.partition) { perBackup[backup, default: []].append(row) }
        }
        for (backup, share) in perBackup {
            append(Outgoing.Chunk(batch: lastBatch, rows: share), for: backup)
        }
        if !perBackup.isEmpty { waiting[lastBatch] = Set(perBackup.keys) }
        if lastBatch % 1_024 == 0, lastBatch > Self.unreplicatedKept {
            let oldest = lastBatch - Self.unreplicatedKept
            unreplicated = unreplicated.filter { $0 > oldest }
        }
        return lastBatch
    }

    /// Queues a partition's snapshot for `backup` (a new backup or migration target), in
    /// batches of `snapshotRowsPerBatch` rows: its last batch marks the snapshot complete.
    /// Returns the batch that completes it.
    public mutating func recordSnapshot(_ rows: [StoredRecord], partition: Int, for backup: NodeID) -> UInt64 {
        var start = 0
        repeat {
            let end = min(start + Self.snapshotRowsPerBatch, rows.count)
            lastBatch += 1
            append(Outgoing.Chunk(
                batch: lastBatch, rows: Array(rows[start..<end]), completesSnapshots: end == rows.count ? [partition] : []), for: backup)
            waiting[lastBatch] = [backup]
            start = end
        } while start < rows.count
        return lastBatch
    }

    private mutating func append(_ chunk: Outgoing.Chunk, for backup: NodeID) {
        outgoing[backup, default: Outgoing()].chunks.append(chunk)
        outgoing[backup]!.rowCount += chunk.rows.count
    }

    /// The next send to `backup` (its oldest batches, up to `maxRowsPerSend` rows and at
    /// least one batch), unless one is under way or nothing waits.
    public mutating func nextSend(to backup: NodeID) -> (through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>)? {
        guard inFlight[backup] == nil, var queued = outgoing[backup], !queued.chunks.isEmpty else { return nil }
        var rows: [StoredRecord] = []
        var completes = Set<Int>()
        var through: UInt64 = 0
        var taken = 0
        while taken < queued.chunks.count, rows.isEmpty || rows.count + queued.chunks[taken].rows.count <= Self.maxRowsPerSend {
            let chunk = queued.chunks[taken]
            rows += chunk.rows
            completes.formUnion(chunk.completesSnapshots)
            through = chunk.batch
            taken += 1
        }
        queued.chunks.removeFirst(taken)
        queued.rowCount -= rows.count
        outgoing[backup] = queued.chunks.isEmpty ? nil : queued
        inFlight[backup] = through
        return (through, rows, completes)
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
                partlyAcknowledged.remove(batch)
                done.append(batch)
            } else {
                waiting[batch] = left
                partlyAcknowledged.insert(batch)
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
        queued.chunks.insert(Outgoing.Chunk(batch: through, rows: rows, completesSnapshots: completesSnapshots), at: 0)
        queued.rowCount += rows.count
        outgoing[backup] = queued
    }

    /// `backup` is no longer a backup of anything here: nothing waits for it any more.
    /// Returns the batches this settles: replicated when another backup acknowledged them,
    /// unreplicated (`isUnreplicated`) when none did.
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
                if partlyAcknowledged.remove(batch) == nil { unreplicated.insert(batch) }
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

    /// Whether `batch` is replicated: every backup it was meant for acknowledged it, or left
    /// the table after another one did.
    public func isReplicated(_ batch: UInt64) -> Bool {
        batch <= lastBatch && waiting[batch] == nil && !unreplicated.contains(batch)
    }

    /// Whether every backup `batch` was meant for left the table before any acknowledged it.
    public func isUnreplicated(_ batch: UInt64) -> Bool {
        unreplicated.contains(batch)
    }
}
