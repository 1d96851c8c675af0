import Tenancy
import TopGunCore

/// The seam between the write path and storage: records go in, a ticket comes back, and
/// the ticket tells when they are durable. `WriteBehindQueue` is the implementation;
/// tests may swap in their own.
public protocol DurabilityPipeline: Sendable {
    /// Whether `enqueue` needs the changed records. False when nothing is written anywhere
    /// (`MemoryOnlyDurability`): writers then skip building them, and a PERSISTED write has
    /// nothing to wait for.
    var needsRecords: Bool { get }
    /// Queues the new states of changed keys; returns a ticket covering everything queued
    /// so far in `partitions` (those of every op of the batch) and the records' own. An empty
    /// list returns the current tail, which is how an idempotent re-send waits for the flush
    /// of the first send.
    func enqueue(_ records: [StoredRecord], touching partitions: PartitionSet) async -> FlushTicket
    /// Waits until everything up to `ticket` in its partitions is committed (or, for a
    /// ticket `awaitsReplication`, applied by the partitions' backups); false on timeout, or
    /// when those rows will not be written by this node (a fenced partition).
    func waitUntilDurable(_ ticket: FlushTicket, timeout: Duration) async -> Bool
    /// Whether changes go to backups too, so that a REPLICATED write can wait for them.
    var replicates: Bool { get }
    /// Rows waiting for a flush, and whether the last flush succeeded (for `/ready`).
    func health() async -> DurabilityHealth
    /// Forgets a deleted tenant for good: drops its pending rows, persists none of its later
    /// writes, and deletes its stored rows. Idempotent; throws when storage fails (call again).
    func purgeTenant(_ tenant: TenantID) async throws
}

public struct DurabilityHealth: Sendable, Equatable {
    public var pending: Int
    public var isHealthy: Bool
    public var lastError: String?

    public init(pending: Int, isHealthy: Bool, lastError: String?) {
        self.pending = pending
        self.isHealthy = isHealthy
        self.lastError = lastError
    }
}

extension WriteBehindQueue: DurabilityPipeline {
    public nonisolated var needsRecords: Bool { true }

    public func health() async -> DurabilityHealth {
        let status = self.status
        return DurabilityHealth(pending: status.pendingCount, isHealthy: status.isHealthy, lastError: status.lastError)
    }
}

extension DurabilityPipeline {
    /// Nothing replicates unless a pipeline says so (a node on its own has no backups).
    public var replicates: Bool { false }

    /// Queues records whose own partitions are all the batch touched.
    public func enqueue(_ records: [StoredRecord]) async -> FlushTicket {
        await enqueue(records, touching: PartitionSet())
    }
}
