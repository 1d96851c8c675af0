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

    public init(writeBehind: WriteBehindQueue, replicator: Replicator, lease: LeaseWatch) {
        self.writeBehind = writeBehind
        self.replicator = replicator
        self.lease = lease
    }

    public var needsRecords: Bool { true }
    public var replicates: Bool { true }

    public func enqueue(_ records: [StoredRecord], touching partitions: PartitionSet) async -> FlushTicket {
        var ticket = await writeBehind.enqueue(records, touching: partitions)
        ticket.leaseTerm = lease.currentTerm
        guard !records.isEmpty, let batch = await replicator.replicate(records) else { return ticket }
        await replicator.track(batch, committedBy: ticket)
        ticket.replicationBatch = batch
        return ticket
    }

    /// PERSISTED waits for the commit. REPLICATED waits for the replicas, while the lease
    /// holds; with nothing to wait for there (no replica is named, every one named left before
    /// applying it, or the write changed nothing and may depend on a change not replicated
    /// yet) it waits for the commit, which is at least as strong.
    public func waitUntilDurable(_ ticket: FlushTicket, timeout: Duration) async -> Bool {
        guard ticket.awaitsReplication, let batch = ticket.replicationBatch else {
            return await writeBehind.waitUntilDurable(ticket, timeout: timeout)
        }
        let started = ContinuousClock.now
        switch await replicator.waitUntilReplicated(batch, timeout: timeout) {
        case .replicated:
            // The lease must have held for the whole wait, not only at its end: in a gap,
            // another node may have taken the partition over and acknowledged writes of its own.
            return lease.isHeld(throughout: ticket.leaseTerm)
        case .unreplicated:
            // Its backups left the table before any applied it: only the commit makes it
            // durable now.
            return await writeBehind.waitUntilDurable(ticket, timeout: timeout - (ContinuousClock.now - started))
        case .timedOut:
            return false
        }
    }

    public func health() async -> DurabilityHealth { await writeBehind.health() }

    public func purgeTenant(_ tenant: TenantID) async throws { try await writeBehind.purgeTenant(tenant) }
}
