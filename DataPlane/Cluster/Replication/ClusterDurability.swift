import Tenancy
import TopGunCore

/// The durability pipeline of a node of a cluster: every change goes to the write-behind
/// queue (PERSISTED waits for its commit) and to the partition's backups through the
/// `Replicator` (REPLICATED waits for them).
public struct ClusterDurability: DurabilityPipeline {
    let writeBehind: WriteBehindQueue
    let replicator: Replicator
    /// REPLICATED is acknowledged only if the lease held from the write to its acknowledgement
    /// (PERSISTED is checked by the database itself, in the flush).
    let lease: LeaseWatch
    /// REPLICATED is acknowledged only while this node owns the write's partitions under the
    /// epochs it took the write in.
    let table: CurrentPartitionTable
    /// PERSISTED and REPLICATED are acknowledged only while this node reaches a majority of
    /// the table's nodes, from the write to its acknowledgement (split-brain safety).
    let quorum: QuorumWatch?

    public init(writeBehind: WriteBehindQueue, replicator: Replicator, lease: LeaseWatch, table: CurrentPartitionTable, quorum: QuorumWatch? = nil) {
        self.writeBehind = writeBehind
        self.replicator = replicator
        self.lease = lease
        self.table = table
        self.quorum = quorum
    }

    public var needsRecords: Bool { true }
    public var replicates: Bool { true }

    public func enqueue(_ records: [StoredRecord], touching partitions: PartitionSet) async -> FlushTicket {
        // The table as the write is taken: a partition it no longer gives this node (a table
        // applied while the write was on its way to memory) is fenced here, so its rows are
        // neither written nor replicated by this node: the write then waits for its commit,
        // which says "not durable" and has the client send it again, to the new owner.
        let taken = table.table
        var ticket = await writeBehind.enqueue(records, touching: partitions)
        ticket.leaseTerm = lease.currentTerm
        ticket.quorumTerm = quorum?.currentTerm
        var stray = false
        for record in records {
            let assignment = taken.assignment(of: record.partition)
            if assignment.owner == table.localNode {
                ticket.ownedEpochs[record.partition] = assignment.epoch
            } else {
                stray = true
            }
        }
        guard !records.isEmpty, !stray, let batch = await replicator.replicate(records) else { return ticket }
        await replicator.track(batch, committedBy: ticket)
        ticket.replicationBatch = batch
        return ticket
    }

    /// PERSISTED waits for the commit. REPLICATED waits for the replicas, while the lease
    /// holds; with nothing to wait for there (no replica is named, every one named left before
    /// applying it, or the write changed nothing and may depend on a change not replicated
    /// yet) it waits for the commit, which is at least as strong.
    public func waitUntilDurable(_ ticket: FlushTicket, timeout: Duration) async -> Bool {
        let durable = await waitForConcern(ticket, timeout: timeout)
        // A node cut off from most of its cluster says "not confirmed", even for a write its
        // database took: the client sends it again, and merging makes that harmless.
        guard durable, let quorum else { return durable }
        return quorum.isHeld(throughout: ticket.quorumTerm)
    }

    private func waitForConcern(_ ticket: FlushTicket, timeout: Duration) async -> Bool {
        guard ticket.awaitsReplication, let batch = ticket.replicationBatch else {
            return await writeBehind.waitUntilDurable(ticket, timeout: timeout)
        }
        let started = ContinuousClock.now
        // The commit, for what is left of the time.
        let commitInstead = { await self.writeBehind.waitUntilDurable(ticket, timeout: timeout - (ContinuousClock.now - started)) }
        switch await replicator.waitUntilReplicated(batch, timeout: timeout) {
        case .replicated:
            // The lease must have held for the whole wait, not only at its end: in a gap,
            // another node may have taken the partition over and acknowledged writes of its own.
            guard lease.isHeld(throughout: ticket.leaseTerm) else { return false }
            // And the partitions must still be this node's under the same epochs: once one has
            // moved, its rows are left out of the sends to replicas (and may have been fenced
            // here before they were replicated), so the replicas' acknowledgement no longer
            // covers the write. Its commit decides then: "not durable" for rows of a fenced
            // partition (handed to the new owner), and the client sends the write again.
            let current = table.table
            let stillOwned = ticket.ownedEpochs.allSatisfy { partition, epoch in
                let assignment = current.assignment(of: partition)
                return assignment.owner == table.localNode && assignment.epoch == epoch
            }
            return stillOwned ? true : await commitInstead()
        case .unreplicated:
            // Its backups left the table before any applied it: only the commit makes it
            // durable now.
            return await commitInstead()
        case .timedOut:
            return false
        }
    }

    public func health() async -> DurabilityHealth { await writeBehind.health() }

    public func purgeTenant(_ tenant: TenantID) async throws { try await writeBehind.purgeTenant(tenant) }
}
