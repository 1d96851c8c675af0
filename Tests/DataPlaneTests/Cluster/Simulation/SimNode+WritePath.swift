@testable import DataPlane
import TopGunCore

/// The write path (`WritePath.apply`, `ClusterPeers`, `ClusterInbox`): a write is applied by
/// its partition's owner and acknowledged once its concern is met (PERSISTED: its flush
/// committed; REPLICATED: every replica applied its batch); a node that does not own the
/// partition forwards it to the owner, and an owner that no longer owns it refuses a
/// forwarded write rather than forwarding it again.
extension SimNode {
    /// A client's write reaching this node.
    func clientSubmit(_ write: SimWrite) {
        let owner = table.owner(of: write.partition)
        if owner != id {
            call(peer: owner, .forwardWrite(writeID: write.id), continuation: .forward(write: write.id, owner: owner),
                 timeout: settings.persistTimeoutMs + 2_000)
            return
        }
        guard let (facts, ticket) = applyLocally(write) else { return world.writeFailed(write.id) }
        wait(for: write, ticket: ticket, purpose: .client(write: write.id, facts: facts, incarnation: lease.incarnation))
    }

    func forwardAnswered(write: Int, owner: NodeID, _ result: SimResult) {
        if case .writeAcknowledged(let facts) = result {
            world.acknowledge(write, acker: owner, facts: facts)
        } else {
            world.writeFailed(write)
        }
    }

    /// The owner's side of a forwarded write.
    func receiveForwardedWrite(_ writeID: Int, from caller: SimCaller) {
        let write = world.writes[writeID]
        guard table.owner(of: write.partition) == id, let (facts, ticket) = applyLocally(write) else { return answer(caller, .failed) }
        wait(for: write, ticket: ticket, purpose: .forwarded(write: writeID, facts: facts, incarnation: lease.incarnation, replyTo: caller))
    }

    /// Merges the write into the partition's records and queues the changed row for storage
    /// and the backups; returns the epoch the partition is held under and the ticket to wait
    /// on, or nil when it is not served here now (not loaded: the client sends it again).
    private func applyLocally(_ write: SimWrite) -> (facts: SimAckFacts, ticket: FlushTicket)? {
        let partition = write.partition
        guard table.owner(of: partition) == id, !unloaded.contains(partition),
            let epoch = held[partition], epoch == table.assignment(of: partition).epoch
        else { return nil }
        var rows = memory[partition] ?? [:]
        let changed = SimRecords.merge(write.record, into: &rows)
        world.log("\(id) applies write #\(write.id) under epoch \(epoch) (table v\(table.version), replicas \(table.assignment(of: partition).replicas))")
        memory[partition] = rows
        // An op that changed nothing still waits for its partition's earlier rows.
        let ticket = enqueueDurably(changed.map { [$0] } ?? [], touching: changed == nil ? PartitionSet([partition]) : PartitionSet())
        var facts = SimAckFacts(epoch: epoch, noOp: changed == nil, replicas: table.assignment(of: partition).replicas.count, appliedAt: now)
        facts.quorumTerm = quorum.currentTerm
        return (facts, ticket)
    }

    private func wait(for write: SimWrite, ticket: FlushTicket, purpose: WaitPurpose) {
        if write.persisted {
            waitDurable(ticket, timeoutMs: settings.persistTimeoutMs, purpose: purpose)
        } else if let batch = ticket.replicationBatch {
            var purpose = purpose
            purpose.markViaReplicas()
            waitReplicated(batch, timeoutMs: settings.persistTimeoutMs, purpose: .replicated(
                purpose, leaseTerm: ticket.leaseTerm, ticket: ticket, deadline: now + settings.persistTimeoutMs))
        } else {
            // No replica to wait for (none named, or the write changed nothing and may rest on
            // a change not replicated yet): the commit, which is at least as strong.
            waitDurable(ticket, timeoutMs: settings.persistTimeoutMs, purpose: purpose)
        }
    }

    /// `ClusterDurability.enqueue`: to the write-behind queue (the ticket records the lease
    /// term the write was taken in), and to the backups.
    func enqueueDurably(_ records: [StoredRecord], touching partitions: PartitionSet) -> FlushTicket {
        let taken = table
        var ticket = enqueueWriteBehind(records, touching: partitions)
        ticket.leaseTerm = leaseWatch.currentTerm
        // The epochs the write was taken under; a row of a partition not this node's (never in
        // the simulation, whose write applies and enqueues at one instant) waits for the commit.
        var stray = false
        for record in records {
            let assignment = taken.assignment(of: record.partition)
            if assignment.owner == id { ticket.ownedEpochs[record.partition] = assignment.epoch } else { stray = true }
        }
        guard !records.isEmpty, !stray, let batch = replicate(records) else { return ticket }
        trackCommit(batch, ticket: ticket)
        ticket.replicationBatch = batch
        return ticket
    }

    /// `ClusterInbox.merge`: rows handed over (a deposed owner's, a backup's) merge like
    /// writes, and the answer waits until they are committed. Without a caller: this node's
    /// own displaced rows of a partition it owns again (`ClusterPeers.handOver`'s `mergeHere`).
    func receiveMerge(_ rows: [StoredRecord], from caller: SimCaller?) {
        let purpose: WaitPurpose = caller.map { .merge(replyTo: $0) } ?? .localMerge
        let partitions = Set(rows.map(\.partition))
        for partition in partitions.sorted() where table.owner(of: partition) != id || unloaded.contains(partition) {
            return resolve(purpose, false)
        }
        var changed: [StoredRecord] = []
        for row in rows {
            var partitionRows = memory[row.partition] ?? [:]
            if let merged = SimRecords.merge(row, into: &partitionRows) { changed.append(merged) }
            memory[row.partition] = partitionRows
        }
        world.log("\(id) merges \(rows.count) handed-over rows: \(changed.count) changed")
        let ticket = enqueueDurably(changed, touching: PartitionSet(partitions))
        waitDurable(ticket, timeoutMs: settings.persistTimeoutMs, purpose: purpose)
    }

    /// `ClusterDurability.waitUntilDurable`: a majority reached from the write to now.
    private func quorumHeld(throughout facts: SimAckFacts) -> Bool {
        !settings.quorum || quorum.isHeld(throughout: facts.quorumTerm)
    }

    /// A wait resolved: acknowledge, answer, or move the persisted watermark on.
    func resolve(_ purpose: WaitPurpose, _ durable: Bool) {
        switch purpose {
        case .client(let write, var facts, let incarnation):
            guard durable, quorumHeld(throughout: facts) else { return world.writeFailed(write) }
            facts.acrossLeaseLoss = incarnation != lease.incarnation
            facts.durableAt = now
            facts.cutOffFromMajority = world.cutOffFromMajority(index, table: table)
            world.acknowledge(write, acker: id, facts: facts)
        case .forwarded(_, var facts, let incarnation, let caller):
            guard durable, quorumHeld(throughout: facts) else { return answer(caller, .failed) }
            facts.acrossLeaseLoss = incarnation != lease.incarnation
            facts.durableAt = now
            facts.cutOffFromMajority = world.cutOffFromMajority(index, table: table)
            answer(caller, .writeAcknowledged(facts))
        case .merge(let caller):
            answer(caller, durable ? .ok : .failed)
        case .localMerge:
            displacedDeliveryAnswered(durable ? .ok : .failed)
        case .commitFollower(let batch):
            commitFollowed(batch, durable: durable)
        case .replicated(let inner, let term, let ticket, _):
            // `ClusterDurability.waitUntilDurable`: the lease must have held for the whole
            // wait, not only at its end; and the write's partitions must still be this node's
            // under the same epochs, or the commit decides.
            guard durable, settings.leaseTerms ? leaseWatch.isHeld(throughout: term) : leaseWatch.isHeld else { return resolve(inner, false) }
            let current = table
            let stillOwned = ticket.ownedEpochs.allSatisfy { partition, epoch in
                current.owner(of: partition) == id && current.assignment(of: partition).epoch == epoch
            }
            if stillOwned { resolve(inner, true) } else { waitForCommitInstead(purpose) }
        }
    }
}
