import TopGunCore

/// The partitions this node holds (design.md §3): each one's records across every tenant's
/// maps and counters, loaded, streamed and dropped on its own, as a migration moves it.
///
/// A partition's records live in the stores of the maps that have keys in it
/// (`MapPartition`), and its counters in the `CounterRegistry`; this is where they are
/// handled together.
public struct LocalPartitions: Sendable {
    let maps: MapDirectory
    let counters: CounterRegistry
    /// Locks live in memory only: a partition that leaves drops its locks.
    let locks: LockRegistry?

    public init(maps: MapDirectory, counters: CounterRegistry, locks: LockRegistry? = nil) {
        self.maps = maps
        self.counters = counters
        self.locks = locks
    }

    /// Installs the rows storage holds for one partition (no events, nothing persisted).
    /// Rows merge into whatever the node holds already: loading twice changes nothing.
    public func install(_ records: [StoredRecord]) async {
        var byMap: [MapDirectory.MapID: [StoredRecord]] = [:]
        var counterRows: [StoredRecord] = []
        for record in records {
            if case .counter = record.value {
                counterRows.append(record)
            } else {
                byMap[MapDirectory.MapID(tenant: record.key.tenant, name: record.key.mapName), default: []].append(record)
            }
        }
        for (id, records) in byMap {
            await maps.store(tenant: id.tenant, name: id.name).restore(records)
        }
        if !counterRows.isEmpty { await counters.restore(counterRows) }
    }

    /// Reads one partition from `storage` and installs it; returns how many rows it held.
    @discardableResult
    public func load(_ partition: Int, from storage: any ServerStorage) async throws -> Int {
        let records = try await storage.loadPartition(partition)
        await install(records)
        maps.unloaded.remove(partition)
        return records.count
    }

    /// Hands every record of `partition` to `sink`, one map (then the counters) at a time,
    /// each with its exact timestamps, OR tags, tombstones and sequence.
    public func stream(_ partition: Int, into sink: ([StoredRecord]) async throws -> Void) async rethrows {
        for store in maps.allStores {
            let records = await store.records(inPartition: partition)
            if !records.isEmpty { try await sink(records) }
        }
        let counterRows = await counters.records(inPartition: partition)
        if !counterRows.isEmpty { try await sink(counterRows) }
    }

    /// Every record of `partition` in one array (`stream` without the chunks).
    public func records(_ partition: Int) async -> [StoredRecord] {
        var all: [StoredRecord] = []
        await stream(partition) { all.append(contentsOf: $0) }
        return all
    }

    /// Forgets every record of `partition` in memory (storage keeps its rows); returns how
    /// many keys and counters were dropped. Writes to it are refused until it is loaded again
    /// (`UnloadedPartitions`); a partition that left this node is routed elsewhere anyway.
    @discardableResult
    public func drop(_ partition: Int) async -> Int {
        maps.unloaded.insert(partition)
        var dropped = 0
        for store in maps.allStores { dropped += await store.dropPartition(partition) }
        await locks?.dropPartition(partition)
        return dropped + (await counters.dropPartition(partition))
    }
}
