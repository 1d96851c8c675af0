import Foundation
import Logging
import ServiceLifecycle
import TopGunCore

/// The owner's side of backups (design.md §6 step 5): every change of a partition this node
/// owns goes to the partition's backups (and to a migration target), batched per backup with
/// one send in flight each; a new backup first gets the partition's snapshot, and once it has
/// acknowledged all of it, the owner records in the cluster store that the copy is complete
/// (the coordinator flips a moving partition only then). What to send and what is
/// replicated is `ReplicationLog`; this actor does the sending.
public actor Replicator: Service {
    private var log = ReplicationLog()
    private let transport: ClusterTransport
    private let table: CurrentPartitionTable
    private let partitions: LocalPartitions
    private let store: any ClusterStore
    private let logger: Logger
    private let localNode: NodeID
    /// Waiters for a batch to be replicated, by batch and waiter.
    private var waiters: [UInt64: [UInt64: CheckedContinuation<ReplicationOutcome, Never>]] = [:]
    /// Names this run's batch numbering: a backup applies a commit watermark only to copies
    /// that follow the same numbering (batch numbers start over with each run).
    let stream = UUID().uuidString.lowercased()
    private var nextWaiter: UInt64 = 0
    /// Per (partition, replica): the epoch it is synced under, or the batch completing its
    /// snapshot while that is under way.
    private var snapshots: [Int: [NodeID: SnapshotState]] = [:]
    /// Every change up to this batch is committed (sent along, so backups know which rows a
    /// promotion must persist).
    private var persistedThrough: UInt64 = 0
    private var wake: AsyncStream<Void>.Continuation?
    /// The run of each replica as the last table named it.
    private var replicaRuns: [NodeID: String] = [:]

    enum SnapshotState: Equatable {
        case sending(batch: UInt64, epoch: Int64)
        /// Acknowledged whole under `epoch`, and recorded in the store at `recordedAt` (nil:
        /// the report failed).
        case synced(epoch: Int64, recordedAt: ContinuousClock.Instant?)
    }

    /// How often the copies of moving partitions are checked against the store, and how old
    /// a record must be before its absence counts (a report may be in flight meanwhile).
    static let movingCopyCheckInterval = Duration.seconds(2)

    private let writeBehind: WriteBehindQueue
    private var metrics: ClusterMetrics?

    func report(to metrics: ClusterMetrics) { self.metrics = metrics }

    public init(
        transport: ClusterTransport, table: CurrentPartitionTable, partitions: LocalPartitions, writeBehind: WriteBehindQueue,
        store: any ClusterStore, logger: Logger
    ) {
        self.writeBehind = writeBehind
        self.transport = transport
        self.table = table
        self.partitions = partitions
        self.store = store
        self.logger = logger
        self.localNode = table.localNode
    }

    /// Queues `records` (changes of partitions this node owns) for their replicas; returns
    /// the batch, replicated once each of them has applied it, or nil when no replica is named
    /// for any of them (nothing can be replicated: a REPLICATED write then waits for its commit).
    public func replicate(_ records: [StoredRecord]) -> UInt64? {
        let current = table.table
        var targeted = false
        let batch = log.record(records) { partition in
            let assignment = current.assignment(of: partition)
            guard assignment.owner == localNode else { return [] }
            if !assignment.replicas.isEmpty { targeted = true }
            return assignment.replicas
        }
        wake?.yield()
        return targeted ? batch : nil
    }

    /// How a wait for a batch's replication ended.
    public enum ReplicationOutcome: Sendable, Equatable {
        case replicated
        /// Every backup it was meant for left the table before acknowledging it: no copy
        /// holds it.
        case unreplicated
        case timedOut
    }

    /// Waits until `batch` is replicated (or known never to be), at most `timeout`.
    public func waitUntilReplicated(_ batch: UInt64, timeout: Duration) async -> ReplicationOutcome {
        if log.isReplicated(batch) { return .replicated }
        if log.isUnreplicated(batch) { return .unreplicated }
        nextWaiter += 1
        let id = nextWaiter
        return await withCheckedContinuation { continuation in
            waiters[batch, default: [:]][id] = continuation
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(batch, id)
            }
        }
    }

    private func expire(_ batch: UInt64, _ id: UInt64) {
        guard let continuation = waiters[batch]?.removeValue(forKey: id) else { return }
        if waiters[batch]?.isEmpty == true { waiters[batch] = nil }
        continuation.resume(returning: .timedOut)
    }

    /// Batches whose rows are queued for storage, oldest first, each with the write-behind
    /// ticket that tells when they are committed.
    private var awaitingCommit: [(batch: UInt64, ticket: FlushTicket)] = []
    private var commitSignal: AsyncStream<Void>.Continuation?

    /// `batch`'s rows were queued for storage under `ticket`: once committed, backups hear
    /// that they need not persist them on a promotion.
    public func track(_ batch: UInt64, committedBy ticket: FlushTicket) {
        awaitingCommit.append((batch, ticket))
        commitSignal?.yield()
    }

    private func takeAwaitingCommit() -> [(batch: UInt64, ticket: FlushTicket)] {
        defer { awaitingCommit = [] }
        return awaitingCommit
    }

    private func committed(through batch: UInt64) {
        persistedThrough = max(persistedThrough, batch)
    }

    /// Follows the commits of tracked batches in order. A batch counts as committed once its
    /// ticket is durable, or once this node owns none of its partitions any more (their rows
    /// were handed to the new owner, which writes what storage lacks); while storage is down
    /// the watermark waits.
    private func followCommits(of durability: WriteBehindQueue) async {
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        commitSignal = continuation
        for await _ in signals {
            for (batch, ticket) in takeAwaitingCommit() {
                while !Task.isCancelled {
                    if await durability.waitUntilDurable(ticket, timeout: .seconds(10)) { break }
                    let current = table.table
                    if !ticket.partitions.contains(where: { current.owner(of: $0) == localNode }) { break }
                    // A fenced ticket fails at once and stays failed: wait for the table that
                    // names the partitions' new owner rather than asking again at once.
                    try? await Task.sleep(for: .milliseconds(100))
                }
                committed(through: batch)
            }
        }
    }

    /// After a new table: snapshots for replicas that lack one, replicas no longer named are
    /// forgotten (nothing waits for them).
    public func tableChanged() async {
        let current = table.table
        // A replica that restarted lost its copies: everything it was sent is sent again,
        // from a snapshot. (The table that dropped it may never be seen here: tables are
        // followed by their latest version.)
        for member in current.members {
            guard let run = member.incarnation else { continue }
            if let known = replicaRuns[member.id], known != run {
                finish(log.forget(member.id))
                for partition in snapshots.keys { snapshots[partition]?[member.id] = nil }
            }
            replicaRuns[member.id] = run
        }
        var named = Set<NodeID>()
        for partition in current.partitions(ownedBy: localNode) {
            let assignment = current.assignment(of: partition)
            for replica in assignment.replicas {
                named.insert(replica)
                switch snapshots[partition]?[replica] {
                case .synced(let epoch, _) where epoch == assignment.epoch: continue
                case .sending(_, let epoch) where epoch == assignment.epoch: continue
                default:
                    let rows = await partitions.records(partition)
                    let batch = log.recordSnapshot(rows, partition: partition, for: replica)
                    snapshots[partition, default: [:]][replica] = .sending(batch: batch, epoch: assignment.epoch)
                }
            }
            // Replicas no longer named for this partition.
            snapshots[partition] = snapshots[partition]?.filter { assignment.replicas.contains($0.key) }
        }
        for partition in snapshots.keys where current.owner(of: partition) != localNode { snapshots[partition] = nil }
        for backup in log.backups.sorted() where !named.contains(backup) {
            finish(log.forget(backup))
        }
        wake?.yield()
    }

    // MARK: Sending

    public func run() async {
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followCommits(of: self.writeBehind) }
            group.addTask {
                // Backups learn the persisted watermark even when no change is sent.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    continuation.yield()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.movingCopyCheckInterval)
                    await self.checkMovingCopies()
                }
            }
            await cancelWhenGracefulShutdown {
                for await _ in signals { await self.startSends() }
            }
            group.cancelAll()
        }
        for (_, list) in waiters { for waiter in list.values { waiter.resume(returning: .timedOut) } }
        waiters = [:]
    }

    private func startSends() {
        for backup in log.backupsReadyToSend {
            guard let send = log.nextSend(to: backup) else { continue }
            Task { await self.perform(send, to: backup) }
        }
    }

    private func perform(_ send: (through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>), to backup: NodeID) async {
        let current = table.table
        var byPartition: [Int: [StoredRecord]] = [:]
        for row in send.rows { byPartition[row.partition, default: []].append(row) }
        for partition in send.completesSnapshots where byPartition[partition] == nil { byPartition[partition] = [] }
        // Rows of partitions this node no longer owns are not sent: their new owner has them.
        var parts: [ReplicaBatch.Part] = []
        for (partition, rows) in byPartition.sorted(by: { $0.key < $1.key }) {
            let assignment = current.assignment(of: partition)
            guard assignment.owner == localNode else { continue }
            parts.append(ReplicaBatch.Part(
                partition: partition, epoch: assignment.epoch, rows: rows, completesSnapshot: send.completesSnapshots.contains(partition)))
        }
        let body = ReplicaBatch(batch: send.through, persistedThrough: persistedThrough, parts: parts, stream: stream).encoded()
        do {
            _ = try await transport.request(ClusterMessageType.replicate, body, to: backup)
            finish(log.acknowledged(backup, through: send.through))
            metrics?.replicationLag.record(Int64(log.lastBatch - (log.acknowledged.values.min() ?? log.lastBatch)))
            await snapshotsAcknowledged(by: backup, through: send.through)
        } catch {
            logger.debug("replication to a backup failed; retrying", metadata: ["backup": "\(backup)", "error": "\(error)"])
            log.sendFailed(backup, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
            try? await Task.sleep(for: .milliseconds(100))
        }
        wake?.yield()
    }

    private func snapshotsAcknowledged(by backup: NodeID, through: UInt64) async {
        for (partition, replicas) in snapshots {
            guard case .sending(let batch, let epoch)? = replicas[backup], batch <= through else { continue }
            var recordedAt: ContinuousClock.Instant?
            do {
                try await store.reportSynced(partition: partition, node: backup, incarnation: replicaRuns[backup], epoch: epoch)
                recordedAt = .now
            } catch {
                // `checkMovingCopies` sends a new snapshot while the store lacks the record.
                logger.warning("cannot record a complete copy", metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
            if snapshots[partition]?[backup] == .sending(batch: batch, epoch: epoch) {
                snapshots[partition]?[backup] = .synced(epoch: epoch, recordedAt: recordedAt)
            }
        }
    }

    /// A moving partition flips only once the store records its target's copy complete, and
    /// nothing else would make this node report it again. The record can be missing although
    /// the target acknowledged the snapshot: the report failed, or a table this node never
    /// applied (tables are followed by their latest version) dropped the target, which
    /// deleted the record and perhaps the target's copy. So while a partition it owns moves,
    /// the owner compares what it counts complete with the store, and sends a fresh snapshot
    /// for each copy the store lacks (the target then reports it as any other).
    func checkMovingCopies() async {
        let current = table.table
        // A report younger than this may not be visible to the read below yet.
        let settled = ContinuousClock.now - Self.movingCopyCheckInterval
        var counted: [(partition: Int, target: NodeID, state: SnapshotState)] = []
        for partition in current.partitions(ownedBy: localNode) {
            let assignment = current.assignment(of: partition)
            guard let target = assignment.migrationTarget, let state = snapshots[partition]?[target],
                case .synced(let epoch, let recordedAt) = state, epoch == assignment.epoch, recordedAt.map({ $0 < settled }) ?? true
            else { continue }
            counted.append((partition, target, state))
        }
        guard !counted.isEmpty else { return }
        let recorded: [Int: [NodeID: Int64]]
        do {
            recorded = try await store.syncedReplicas()
        } catch {
            logger.debug("cannot read which copies are complete", metadata: ["error": "\(error)"])
            return
        }
        var resent = 0
        for (partition, target, state) in counted where snapshots[partition]?[target] == state {
            let epoch = current.assignment(of: partition).epoch
            guard recorded[partition]?[target] != epoch else { continue }
            snapshots[partition]?[target] = nil
            resent += 1
        }
        guard resent > 0 else { return }
        logger.notice("copies of moving partitions are not recorded complete; sending them again", metadata: ["partitions": "\(resent)"])
        await tableChanged()
    }

    private func finish(_ batches: [UInt64]) {
        for batch in batches {
            let outcome: ReplicationOutcome = log.isUnreplicated(batch) ? .unreplicated : .replicated
            for waiter in (waiters.removeValue(forKey: batch) ?? [:]).values { waiter.resume(returning: outcome) }
        }
    }
}
