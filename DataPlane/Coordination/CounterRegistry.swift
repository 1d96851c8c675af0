import Tenancy
import TopGunCore
import TopGunWire

/// PN counters of a node, keyed by tenant and name (protocol.md §6.6.8). States arrive in
/// either spelling and leave in both, so old and new clients understand them.
public actor CounterRegistry {
    /// A counter of a tenant.
    typealias CounterKey = TenantScopedName

    /// The storage namespace of counters: `StoredValue.counter` rows use it as their map
    /// name (the row kind keeps them apart from a map of the same name).
    public static let storageMapName = "counters"

    private var counters: [CounterKey: PNCounter] = [:]
    private var subscribers: [CounterKey: [SessionID: any Subscriber]] = [:]
    private var keysBySession: [SessionID: Set<CounterKey>] = [:]
    /// Deleted tenants: their counters are gone for good.
    private var purgedTenants = Set<TenantID>()

    public init() {}

    public func restore(_ records: [StoredRecord]) {
        for record in records {
            guard case .counter(let counter) = record.value else { continue }
            let key = CounterKey(tenant: record.key.tenant, name: record.key.key)
            counters[key, default: PNCounter()].merge(counter)
        }
    }

    /// `COUNTER_REQUEST`: subscribes the caller and returns the current state.
    public func request(_ name: String, tenant: TenantID, subscriber: any Subscriber) -> CounterResponse {
        let key = CounterKey(tenant: tenant, name: name)
        subscribe(key, subscriber)
        return CounterResponse(name: name, state: CounterState(counters[key] ?? PNCounter()))
    }

    /// `COUNTER_SYNC`: max-merges, subscribes the caller, replies `COUNTER_UPDATE` to it and
    /// pushes the merged state to the other subscribers. Returns the record to persist when
    /// the state changed.
    public func sync(_ name: String, state: CounterState, tenant: TenantID, subscriber: any Subscriber) -> StoredRecord? {
        // A sync of a deleted tenant that raced its purge changes nothing.
        guard !purgedTenants.contains(tenant) else { return nil }
        let key = CounterKey(tenant: tenant, name: name)
        subscribe(key, subscriber)
        let existed = counters[key] != nil
        var counter = counters[key] ?? PNCounter()
        let changed = counter.merge(state.counter)
        counters[key] = counter
        let update = TopGunMessage.counterUpdate(CounterUpdate(name: name, state: CounterState(counter)))
        subscriber.send(update)
        guard changed else { return nil }
        let bytes = WireCodec().encode(update)
        for (id, other) in subscribers[key] ?? [:] where id != subscriber.id {
            other.send(encoded: bytes)
        }
        return StoredRecord(
            key: StorageKey(tenant: tenant, mapName: Self.storageMapName, key: name),
            partition: PartitionFunction.partition(forKey: name, tenantID: tenant.rawValue),
            value: .counter(counter), mayExistInStorage: existed)
    }

    /// Merges counter rows handed over by another node (a partition's former owner) into the
    /// live counters, pushing each changed state to its watchers; returns the rows to persist.
    public func merge(_ records: [StoredRecord]) -> [StoredRecord] {
        var changedRows: [StoredRecord] = []
        for record in records {
            guard case .counter(let incoming) = record.value, !purgedTenants.contains(record.key.tenant) else { continue }
            let key = CounterKey(tenant: record.key.tenant, name: record.key.key)
            let existed = counters[key] != nil
            var counter = counters[key] ?? PNCounter()
            guard counter.merge(incoming) else { continue }
            counters[key] = counter
            let bytes = WireCodec().encode(.counterUpdate(CounterUpdate(name: key.name, state: CounterState(counter))))
            for (_, watcher) in subscribers[key] ?? [:] { watcher.send(encoded: bytes) }
            changedRows.append(StoredRecord(
                key: record.key, partition: record.partition, value: .counter(counter), mayExistInStorage: existed))
        }
        return changedRows
    }

    /// Every counter of `partition` as the row storage holds it (a partition streamed on
    /// its own).
    public func records(inPartition partition: Int) -> [StoredRecord] {
        counters.compactMap { key, counter in
            let home = PartitionFunction.partition(forKey: key.name, tenantID: key.tenant.rawValue)
            guard home == partition else { return nil }
            return StoredRecord(
                key: StorageKey(tenant: key.tenant, mapName: Self.storageMapName, key: key.name), partition: partition, value: .counter(counter))
        }
    }

    /// Forgets the counters of `partition` (their watchers stay subscribed); returns how many.
    @discardableResult
    public func dropPartition(_ partition: Int) -> Int {
        let before = counters.count
        counters = counters.filter { PartitionFunction.partition(forKey: $0.key.name, tenantID: $0.key.tenant.rawValue) != partition }
        return before - counters.count
    }

    /// Forgets a deleted tenant's counters and subscribers, for good.
    public func removeTenant(_ tenant: TenantID) {
        purgedTenants.insert(tenant)
        counters = counters.filter { $0.key.tenant != tenant }
        subscribers = subscribers.filter { $0.key.tenant != tenant }
        for (session, keys) in keysBySession where keys.contains(where: { $0.tenant == tenant }) {
            let kept = keys.filter { $0.tenant != tenant }
            keysBySession[session] = kept.isEmpty ? nil : kept
        }
    }

    public func removeSession(_ session: SessionID) {
        for key in keysBySession.removeValue(forKey: session) ?? [] {
            subscribers[key]?.removeValue(forKey: session)
        }
    }

    private func subscribe(_ key: CounterKey, _ subscriber: any Subscriber) {
        subscribers[key, default: [:]][subscriber.id] = subscriber
        keysBySession[subscriber.id, default: []].insert(key)
    }
}
