@testable import DataPlane
import TopGunCore

/// `Replicator` (the owner's side: batches to replicas through the production
/// `ReplicationLog`, snapshots, synced reports, the persisted watermark), `ReplicaHolder` (the
/// backup's side, through the production `BackupReplicas`) and `DisplacedRows` (rows of lost
/// partitions and handed-over copies, delivered to the partitions' owners until accepted).
extension SimNode {
    // MARK: Replicator

    /// The batch, or nil when no replica is named for any of the rows.
    func replicate(_ records: [StoredRecord]) -> UInt64? {
        let current = table
        var targeted = false
        let batch = log.record(records) { partition in
            let assignment = current.assignment(of: partition)
            guard assignment.owner == id else { return [] }
            if !assignment.replicas.isEmpty { targeted = true }
            return assignment.replicas
        }
        wakeReplicator()
        return targeted ? batch : nil
    }

    /// `wake.yield()`: one pending wake-up at a time (`bufferingNewest(1)`).
    func wakeReplicator() {
        guard !wakeScheduled else { return }
        wakeScheduled = true
        timer(after: 0, .replicatorWake)
    }

    func waitReplicated(_ batch: UInt64, timeoutMs: Int64, purpose: WaitPurpose) {
        if isReplicated(batch) { return resolve(purpose, true) }
        if log.isUnreplicated(batch) { return waitForCommitInstead(purpose) }
        nextWaiter += 1
        replicationWaiters[batch, default: [:]][nextWaiter] = purpose
        timer(after: timeoutMs, .replicationWaitExpired(batch: batch, waiter: nextWaiter))
    }

    func replicationWaitExpired(_ batch: UInt64, _ waiter: UInt64) {
        guard let purpose = replicationWaiters[batch]?.removeValue(forKey: waiter) else { return }
        if replicationWaiters[batch]?.isEmpty == true { replicationWaiters[batch] = nil }
        resolve(purpose, false)
    }

    /// `ReplicationLog.isReplicated`; with `unreplicatedBatches` off, the old log's answer
    /// (a batch whose backups all left unacknowledged counted replicated).
    private func isReplicated(_ batch: UInt64) -> Bool {
        log.isReplicated(batch) || (!settings.unreplicatedBatches && log.isUnreplicated(batch))
    }

    private func finish(_ batches: [UInt64]) {
        for batch in batches {
            let waiters = replicationWaiters.removeValue(forKey: batch) ?? [:]
            let replicated = isReplicated(batch)
            for waiter in waiters.keys.sorted() {
                if replicated { resolve(waiters[waiter]!, true) } else { waitForCommitInstead(waiters[waiter]!) }
            }
        }
    }

    /// `ClusterDurability.waitUntilDurable` on `.unreplicated`: the batch's backups left
    /// before any applied it, so the write waits for its commit, for what is left of its time.
    func waitForCommitInstead(_ purpose: WaitPurpose) {
        guard case .replicated(var inner, _, let ticket, let deadline) = purpose else { return resolve(purpose, false) }
        world.log("\(id): a replicated write's backups left before applying it, or its partition moved: it waits for the commit")
        inner.markViaReplicas(false)
        waitDurable(ticket, timeoutMs: max(0, deadline - now), purpose: inner)
    }

    /// `track` and `followCommits`: batches count as persisted in order, each once its ticket
    /// is durable, or once this node owns none of its partitions any more (their rows went to
    /// the new owner); while storage is down the watermark waits.
    func trackCommit(_ batch: UInt64, ticket: FlushTicket) {
        awaitingCommit.append((batch, ticket))
        followNextCommit()
    }

    private func followNextCommit() {
        guard followingCommit == nil, !awaitingCommit.isEmpty else { return }
        followingCommit = awaitingCommit.removeFirst()
        waitDurable(followingCommit!.ticket, timeoutMs: 10_000, purpose: .commitFollower(batch: followingCommit!.batch))
    }

    func commitFollowed(_ batch: UInt64, durable: Bool) {
        guard let (following, ticket) = followingCommit, following == batch else { return }
        let current = table
        if !durable, ticket.partitions.contains(where: { current.owner(of: $0) == id }) {
            // A fenced ticket fails at once and stays failed: production waits 100 ms for the
            // table that names the partitions' new owner before asking again. Many waits with
            // no time passing would be a busy loop (a core burnt until the table changes).
            followerRetries = followerRetries.at == now ? (now, followerRetries.count + 1) : (now, 1)
            var backoff = settings.followerBackoffMs
            if followerRetries.count > settings.followerSpinLimit {
                world.liveness("\(id)'s commit follower spins on batch \(batch): its ticket failed \(followerRetries.count) times at one instant, and the node's table says it owns partition(s) \(Array(ticket.partitions).filter { current.owner(of: $0) == id })")
                // (Virtual time must pass for the run to go on.)
                followerRetries = (now, 0)
                backoff = 100
            }
            timer(after: backoff, .followCommitAgain)
            return
        }
        if let watched = world.watchedPartition, ticket.partitions.contains(watched) {
            world.log("\(id) counts batch \(batch) committed (\(durable ? "its ticket is durable" : "its partitions are owned elsewhere now"))")
        }
        persistedThrough = max(persistedThrough, batch)
        followingCommit = nil
        followNextCommit()
    }

    func followCommitAgain() {
        guard let (batch, ticket) = followingCommit else { return }
        waitDurable(ticket, timeoutMs: 10_000, purpose: .commitFollower(batch: batch))
    }

    /// After a new table: snapshots for replicas that lack one; replicas no longer named are
    /// forgotten.
    func replicatorTableChanged() {
        let current = table
        // A replica that restarted lost its copies: everything it was sent is sent again, from
        // a snapshot (the table that dropped it may never be seen here).
        for member in current.members {
            guard let run = member.incarnation else { continue }
            if let known = replicaRuns[member.id], known != run {
                world.log("\(id) forgets what it sent \(member.id)'s run \(known) (now \(run))")
                finish(log.forget(member.id))
                for partition in snapshots.keys.sorted() { snapshots[partition]?[member.id] = nil }
            }
            replicaRuns[member.id] = run
        }
        var named = Set<NodeID>()
        var snapshotted = 0
        defer { if snapshotted > 0 { world.log("\(id) snapshots \(snapshotted) partitions to replicas") } }
        for partition in current.partitions(ownedBy: id) {
            let assignment = current.assignment(of: partition)
            for replica in assignment.replicas {
                named.insert(replica)
                switch snapshots[partition]?[replica] {
                case .synced(let epoch, _) where epoch == assignment.epoch: continue
                case .sending(_, let epoch) where epoch == assignment.epoch: continue
                default:
                    let rows = SimRecords.sorted((memory[partition] ?? [:]).values)
                    let batch = log.recordSnapshot(rows, partition: partition, for: replica)
                    snapshots[partition, default: [:]][replica] = .sending(batch: batch, epoch: assignment.epoch)
                    snapshotted += 1
                }
            }
            snapshots[partition] = snapshots[partition]?.filter { assignment.replicas.contains($0.key) }
        }
        for partition in snapshots.keys.sorted() where current.owner(of: partition) != id { snapshots[partition] = nil }
        for backup in log.backups.sorted() where !named.contains(backup) {
            finish(log.forget(backup))
        }
        wakeReplicator()
    }

    func startSends() {
        for backup in log.backupsReadyToSend {
            guard let send = log.nextSend(to: backup) else { continue }
            perform(send, to: backup)
        }
    }

    /// One send: the rows of partitions this node still owns, each under its current epoch.
    private func perform(_ send: (through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>), to backup: NodeID) {
        let current = table
        var byPartition: [Int: [StoredRecord]] = [:]
        for row in send.rows { byPartition[row.partition, default: []].append(row) }
        for partition in send.completesSnapshots where byPartition[partition] == nil { byPartition[partition] = [] }
        var parts: [ReplicaBatch.Part] = []
        for (partition, rows) in byPartition.sorted(by: { $0.key < $1.key }) {
            let assignment = current.assignment(of: partition)
            guard assignment.owner == id else { continue }
            parts.append(ReplicaBatch.Part(
                partition: partition, epoch: assignment.epoch, rows: rows, completesSnapshot: send.completesSnapshots.contains(partition)))
        }
        // One numbering per run (`Replicator.stream`); with `watermarkPerRun` off, none.
        let stream = settings.watermarkPerRun ? "\(id)-g\(generation)" : ""
        let body = ReplicaBatch(batch: send.through, persistedThrough: persistedThrough, parts: parts, stream: stream)
        call(peer: backup, .replicate(body), continuation: .replicate(
            backup: backup, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots))
    }

    func replicationAnswered(backup: NodeID, through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>, _ result: SimResult) {
        guard case .ok = result else {
            log.sendFailed(backup, through: through, rows: rows, completesSnapshots: completesSnapshots)
            // The production task sleeps 100 ms, then wakes the sender.
            timer(after: 100, .replicatorWake)
            return
        }
        finish(log.acknowledged(backup, through: through))
        // The sender wakes once the copies it completed are reported (or at once).
        if !snapshotsAcknowledged(by: backup, through: through) { wakeReplicator() }
    }

    /// Complete snapshots are recorded in the database (the planner flips a moving partition
    /// only then). One request for all of them here; one per partition in production.
    /// Whether reports were sent.
    private func snapshotsAcknowledged(by backup: NodeID, through: UInt64) -> Bool {
        var reports: [SimSyncedReport] = []
        var sent: [Int: SnapshotState] = [:]
        for partition in snapshots.keys.sorted() {
            guard let state = snapshots[partition]?[backup], case .sending(let batch, let epoch) = state, batch <= through else { continue }
            sent[partition] = state
            reports.append(SimSyncedReport(partition: partition, node: backup, incarnation: replicaRuns[backup], epoch: epoch))
        }
        guard !reports.isEmpty else { return false }
        call(database: .reportSynced(reports), continuation: .reportSynced(backup: backup, sent: sent))
        return true
    }

    func syncedReported(backup: NodeID, sent: [Int: SnapshotState], _ result: SimResult) {
        wakeReplicator()
        let recordedAt: Int64? = if case .failed = result { nil } else { world.now }
        if recordedAt == nil { world.log("\(id) could not report \(sent.count) copies of \(backup) synced") }
        for (partition, state) in sent where snapshots[partition]?[backup] == state {
            guard case .sending(_, let epoch) = state else { continue }
            snapshots[partition]?[backup] = .synced(epoch: epoch, recordedAt: recordedAt)
        }
    }

    /// `Replicator.movingCopyCheckInterval`.
    static let movingCopyCheckMs: Int64 = 2_000

    /// `Replicator.checkMovingCopies`: copies of moving partitions counted complete (for at
    /// least a check interval, or whose report failed) are compared with the database.
    func checkMovingCopies() {
        let settled = world.now - Self.movingCopyCheckMs
        var counted: [(partition: Int, target: NodeID, state: SnapshotState)] = []
        for partition in table.partitions(ownedBy: id) {
            let assignment = table.assignment(of: partition)
            guard let target = assignment.migrationTarget, let state = snapshots[partition]?[target],
                case .synced(let epoch, let recordedAt) = state, epoch == assignment.epoch, recordedAt.map({ $0 < settled }) ?? true
            else { continue }
            counted.append((partition, target, state))
        }
        guard !counted.isEmpty else { return }
        call(database: .syncedReplicas, continuation: .movingCopiesRead(counted: counted))
    }

    func movingCopiesRead(_ counted: [(partition: Int, target: NodeID, state: SnapshotState)], _ result: SimResult) {
        guard case .synced(let recorded) = result else { return }
        var resent = 0
        for (partition, target, state) in counted where snapshots[partition]?[target] == state {
            guard case .synced(let epoch, _) = state, recorded[partition]?[target] != epoch else { continue }
            snapshots[partition]?[target] = nil
            resent += 1
        }
        guard resent > 0 else { return }
        world.log("\(id) sends \(resent) copies of moving partitions again (the database lacks them)")
        replicatorTableChanged()
    }

    // MARK: ReplicaHolder

    /// Applies an owner's batch; false (the sender hears a failure) when this node knows a
    /// newer owner of one of its partitions.
    func receiveReplica(_ batch: ReplicaBatch, from owner: NodeID) -> Bool {
        let current = table
        let watched = world.watchedPartition
        let source = ReplicaHolder.Source(owner: owner, stream: batch.stream)
        var toHandOver: [StoredRecord] = []
        // A copy that now follows a newer owner (its batch came before its table): its rows
        // the old owner never reported committed go to the new owner (a `Task` in production).
        defer { handOverDisplaced(toHandOver) }
        for part in batch.parts {
            if let copy = replicas.copies[part.partition], part.epoch > copy.epoch, let taken = replicas.take(part.partition) {
                if part.partition == watched {
                    world.log("\(id) hands \(taken.unpersisted.count) uncommitted rows of its copy of partition \(part.partition) (epoch \(copy.epoch)) over: \(owner) sends epoch \(part.epoch)")
                }
                toHandOver += SimRecords.sorted(taken.unpersisted)
                followed[part.partition] = nil
            }
            let known = current.assignment(of: part.partition)
            if known.epoch > part.epoch {
                world.log("\(id) refuses \(owner)'s batch \(batch.batch): partition \(part.partition) epoch \(part.epoch) < \(known.epoch)")
                return false
            }
            if settings.replicasNamedByTheirTable, known.epoch == part.epoch, !known.replicas.contains(id) {
                world.log("\(id) refuses \(owner)'s batch \(batch.batch): table v\(current.version) does not name it a replica of partition \(part.partition)")
                return false
            }
            switch replicas.apply(
                partition: part.partition, epoch: part.epoch, batch: batch.batch, rows: part.rows, completesSnapshot: part.completesSnapshot)
            {
            case .applied:
                followed[part.partition] = source
                if part.partition == watched {
                    world.log("\(id) applies \(owner)'s batch \(batch.batch) of partition \(part.partition) (epoch \(part.epoch), \(part.rows.count) rows\(part.completesSnapshot ? ", completing a snapshot" : ""), persisted through \(batch.persistedThrough))")
                }
            case .staleEpoch(let newer):
                world.log("\(id) refuses \(owner)'s batch \(batch.batch): its copy of partition \(part.partition) follows epoch \(newer)")
                return false
            }
        }
        for partition in followed.keys.sorted() where followed[partition] == source {
            if let epoch = replicas.copies[partition]?.epoch {
                let before = partition == watched ? replicas.copies[partition]?.unpersisted.count ?? 0 : 0
                replicas.persisted(partition: partition, epoch: epoch, through: batch.persistedThrough)
                if partition == watched, let after = replicas.copies[partition]?.unpersisted.count, after < before {
                    world.log("\(id) counts \(before - after) rows of its copy of partition \(partition) (epoch \(epoch)) committed: \(owner)'s batch \(batch.batch) says it committed through \(batch.persistedThrough)")
                }
            }
        }
        return true
    }

    /// `ReplicaHolder.take`: the rows of the copy of a partition this node now owns.
    func takeCopy(_ partition: Int) -> [StoredRecord]? {
        followed[partition] = nil
        if partition == world.watchedPartition, let copy = replicas.copies[partition] {
            world.log("\(id) takes its copy of partition \(partition) (epoch \(copy.epoch), \(copy.rows.count) rows, \(copy.unpersisted.count) uncommitted)")
        }
        return replicas.take(partition).map { SimRecords.sorted($0.rows) }
    }

    /// `ReplicaHolder.tableChanged`: copies no longer backed up here are dropped; those whose
    /// owner changed hand their uncommitted rows to the new owner first.
    func replicaHolderTableChanged() {
        let current = table
        let watched = world.watchedPartition
        var toHandOver: [StoredRecord] = []
        for partition in replicas.copies.keys.sorted() {
            let copy = replicas.copies[partition]!
            let assignment = current.assignment(of: partition)
            if assignment.owner == id { continue }
            // A table older than the copy (applied late): a newer one decides.
            if settings.replicasNamedByTheirTable, assignment.epoch < copy.epoch { continue }
            if partition == watched, assignment.epoch > copy.epoch || !assignment.replicas.contains(id) {
                world.log("\(id) gives up its copy of partition \(partition) (epoch \(copy.epoch), \(copy.unpersisted.count) uncommitted rows): owner \(assignment.owner), epoch \(assignment.epoch)")
            }
            if assignment.epoch > copy.epoch {
                if let taken = replicas.take(partition) { toHandOver += SimRecords.sorted(taken.unpersisted) }
                followed[partition] = nil
            } else if !assignment.replicas.contains(id) {
                // Dropped, its uncommitted rows handed to the owner (they may exist nowhere else).
                if let taken = replicas.take(partition) { toHandOver += SimRecords.sorted(taken.unpersisted) }
                followed[partition] = nil
            }
        }
        if !toHandOver.isEmpty {
            world.log("\(id) hands \(toHandOver.count) uncommitted rows of copies to new owners")
            handOverDisplaced(toHandOver)
        }
    }

    // MARK: DisplacedRows

    func handOverDisplaced(_ rows: [StoredRecord]) {
        guard !rows.isEmpty else { return }
        displacedPending += rows
        if displacedDelivery == nil, !displacedRetryScheduled {
            displacedRetryScheduled = true
            timer(after: 0, .displacedRetry)
        }
    }

    /// `attempt` with `ClusterPeers.handOver`: each row to its partition's owner in the
    /// current table, one request per owner in order; all go back when one fails.
    func attemptDisplacedDelivery() {
        guard displacedDelivery == nil, !displacedPending.isEmpty else { return }
        let rows = displacedPending
        displacedPending = []
        var byOwner: [NodeID: [StoredRecord]] = [:]
        for row in rows { byOwner[table.owner(of: row.partition), default: []].append(row) }
        displacedDelivery = DisplacedDelivery(rows: rows, remaining: byOwner.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        deliverNextDisplaced()
    }

    private func deliverNextDisplaced() {
        guard var delivery = displacedDelivery else { return }
        guard !delivery.remaining.isEmpty else {
            displacedDelivery = nil
            displacedFailures = 0
            // Rows handed over meanwhile signalled the loop again.
            if !displacedPending.isEmpty { attemptDisplacedDelivery() }
            return
        }
        let (owner, rows) = delivery.remaining.removeFirst()
        displacedDelivery = delivery
        world.log("\(id) delivers \(rows.count) displaced rows (partitions \(Set(rows.map(\.partition)).sorted())) to \(owner)")
        // Rows of partitions this node owns again (it gave them up and got them back) merge here.
        guard owner != id else { return receiveMerge(rows, from: nil) }
        call(peer: owner, .mergeRecords(rows), continuation: .mergeRecords, timeout: settings.persistTimeoutMs + 2_000)
    }

    func displacedDeliveryAnswered(_ result: SimResult) {
        guard let delivery = displacedDelivery else { return }
        if case .ok = result { return deliverNextDisplaced() }
        world.log("\(id)'s delivery of displaced rows failed (\(displacedFailures + 1) in a row)")
        displacedDelivery = nil
        displacedPending = delivery.rows + displacedPending
        displacedFailures += 1
        displacedRetryScheduled = true
        timer(after: Int64(min(50 * (1 << min(displacedFailures, 6)), 2_000)), .displacedRetry)
    }
}
