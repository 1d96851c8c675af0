import Tenancy
import TopGunCore

/// The durability of a node whose records live in its maps and nowhere else
/// (`topgun dev --storage memory`): there is nothing to write, so a write is as durable as it
/// will ever be once it is applied, and everything is lost at exit. No write-behind runs and
/// no second copy of the records is kept; a PERSISTED ack leaves as soon as its ops are
/// applied, like an APPLIED one.
public struct MemoryOnlyDurability: DurabilityPipeline {
    public init() {}

    public var needsRecords: Bool { false }

    public func enqueue(_ records: [StoredRecord], touching partitions: PartitionSet) async -> FlushTicket { FlushTicket(sequence: 0) }

    public func waitUntilDurable(_ ticket: FlushTicket, timeout: Duration) async -> Bool { true }

    public func health() async -> DurabilityHealth { DurabilityHealth(pending: 0, isHealthy: true, lastError: nil) }

    /// The tenant's maps are dropped by the purger; nothing else holds its records.
    public func purgeTenant(_ tenant: TenantID) async throws {}
}
