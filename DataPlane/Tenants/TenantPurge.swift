import Logging
import Metadata
import ServiceLifecycle
import Synchronization
import Tenancy
import TopGunCore

/// Purging a deleted tenant (issue 5, "live control"): its records leave memory and storage
/// for good. A deletion is final (the control plane never revives a deleted tenant), so every
/// part of the node may remember a purged tenant and ignore its late writes.
public struct TenantPurge: Sendable {
    let maps: MapDirectory
    let counters: CounterRegistry
    let journal: EventJournal
    let topics: TopicRegistry
    let locks: LockRegistry
    let durability: any DurabilityPipeline

    public init(
        maps: MapDirectory, counters: CounterRegistry, journal: EventJournal, topics: TopicRegistry, locks: LockRegistry,
        durability: any DurabilityPipeline
    ) {
        self.maps = maps
        self.counters = counters
        self.journal = journal
        self.topics = topics
        self.locks = locks
        self.durability = durability
    }

    /// Removes every record of `tenant` from memory (maps with their Merkle trees and live
    /// queries, counters, journal, topic subscriptions, locks), then from the write-behind
    /// queue and storage. Idempotent; throws when storage fails (call again).
    public func purge(_ tenant: TenantID) async throws {
        // Memory first: the data stops being visible at once, whatever storage does.
        maps.removeTenant(tenant, forever: true)
        await counters.removeTenant(tenant)
        journal.removeTenant(tenant)
        await topics.removeTenant(tenant)
        await locks.removeTenant(tenant)
        try await durability.purgeTenant(tenant)
    }

    /// The tenants with maps in memory.
    public var tenantsInMemory: Set<TenantID> { maps.tenants }
}

extension LocalPartitions {
    /// Loads every partition of `storage` into memory, one at a time, and returns how many
    /// records it installed. With `metadata`, the rows of tenants it says are deleted (or
    /// does not know) are left out and purged: a purge cut short (a crash, a storage outage)
    /// must not bring a deleted tenant's data back at the next start. A tenant metadata cannot
    /// answer for is loaded (the store may be down briefly; losing data is worse).
    public func loadAll(
        from storage: any ServerStorage, checkingTenantsIn metadata: (any MetadataStore)?, purge: TenantPurge, logger: Logger
    ) async throws -> Int {
        var gone = Set<TenantID>()
        var kept = Set<TenantID>()
        var loaded = 0
        for partition in 0..<PartitionFunction.partitionCount {
            var records = try await storage.loadPartition(partition)
            if let metadata {
                for tenant in Set(records.map(\.key.tenant)) where !gone.contains(tenant) && !kept.contains(tenant) {
                    if await Self.isDeleted(tenant, in: metadata, logger: logger) { gone.insert(tenant) } else { kept.insert(tenant) }
                }
                if !gone.isEmpty { records.removeAll { gone.contains($0.key.tenant) } }
            }
            loaded += records.count
            await install(records)
        }
        for tenant in gone.sorted(by: { $0.rawValue < $1.rawValue }) {
            do {
                try await purge.purge(tenant)
                logger.info("purged the stored rows of a deleted tenant", metadata: ["tenant": "\(tenant)"])
            } catch {
                // Its rows stay out of memory; the next start tries again.
                logger.warning("cannot purge the stored rows of a deleted tenant", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            }
        }
        return loaded
    }

    private static func isDeleted(_ tenant: TenantID, in metadata: any MetadataStore, logger: Logger) async -> Bool {
        do {
            let found = try await metadata.tenant(id: tenant)
            return found == nil || found?.status == .deleted
        } catch {
            logger.warning("cannot check a stored tenant at load; loading its rows", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            return false
        }
    }
}

/// Purges deleted tenants in the background, one at a time, retrying with backoff until
/// storage agrees: the metadata follower only asks (`request`), so a long `DELETE` never
/// delays the next change it applies (a revocation must take effect in under a second).
public final class TenantPurger: Service, Sendable {
    private let purge: TenantPurge
    private let logger: Logger
    private let requests: AsyncStream<TenantID>
    private let continuation: AsyncStream<TenantID>.Continuation
    /// Tenants purged by this process: asking again is free.
    private let purged = Mutex<Set<TenantID>>([])

    public init(purge: TenantPurge, logger: Logger) {
        self.purge = purge
        self.logger = logger
        (requests, continuation) = AsyncStream.makeStream(of: TenantID.self)
    }

    /// Asks for `tenant` to be purged; returns at once.
    public func request(_ tenant: TenantID) {
        guard !purged.withLock({ $0.contains(tenant) }) else { return }
        continuation.yield(tenant)
    }

    /// Whether `tenant` was purged by this process.
    public func hasPurged(_ tenant: TenantID) -> Bool {
        purged.withLock { $0.contains(tenant) }
    }

    /// The tenants with maps in memory (re-checked after the metadata stream resynchronizes,
    /// since a deletion may have been missed meanwhile).
    public var tenantsInMemory: Set<TenantID> { purge.tenantsInMemory }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await tenant in self.requests {
                await self.purgeUntilDone(tenant)
            }
        }
    }

    private func purgeUntilDone(_ tenant: TenantID) async {
        guard !hasPurged(tenant) else { return }
        let start = ContinuousClock.now
        var delay = Duration.milliseconds(100)
        var failures = 0
        while !Task.isCancelled {
            do {
                try await purge.purge(tenant)
                purged.withLock { _ = $0.insert(tenant) }
                logger.info("purged a deleted tenant", metadata: ["tenant": "\(tenant)", "elapsed": "\(ContinuousClock.now - start)"])
                return
            } catch {
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("purging a deleted tenant failed; retrying", metadata: ["tenant": "\(tenant)", "failures": "\(failures)", "error": "\(error)"])
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
