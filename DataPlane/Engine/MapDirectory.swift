import Synchronization
import Tenancy
import TopGunCore

/// Finds (or creates) the store of a map of a tenant. Maps are keyed by tenant first, so
/// two tenants using the same map name never share one.
public final class MapDirectory: Sendable {
    /// A map of a tenant.
    public typealias MapID = TenantScopedName

    private let stores = Mutex<[MapID: MapStore]>([:])
    /// Deleted tenants, whose maps are never registered again (a deletion is final).
    private let purged = Mutex<Set<TenantID>>([])
    /// Each tenant's clock: a map uses its tenant's.
    public let clocks: TenantClocks
    /// The node's order of changes per partition, shared by every map.
    public let sequences: PartitionSequences
    /// Partitions whose records are not in memory now: no write goes to them.
    public let unloaded = UnloadedPartitions()

    public init(clocks: TenantClocks, sequences: PartitionSequences = PartitionSequences()) {
        self.clocks = clocks
        self.sequences = sequences
    }

    public func store(tenant: TenantID, name: String) -> MapStore {
        let id = MapID(tenant: tenant, name: name)
        return stores.withLock { stores in
            if let store = stores[id] { return store }
            let store = MapStore(tenant: tenant, name: name, clock: clocks.clock(for: tenant), sequences: sequences)
            // A late writer of a purged tenant (its request raced the deletion) gets a store
            // nobody else sees, which is dropped with its request.
            if purged.withLock({ $0.contains(tenant) }) { return store }
            stores[id] = store
            return store
        }
    }

    /// The store if the map exists already (reads must not create maps).
    public func existingStore(tenant: TenantID, name: String) -> MapStore? {
        stores.withLock { $0[MapID(tenant: tenant, name: name)] }
    }

    public func stores(of tenant: TenantID) -> [MapStore] {
        stores.withLock { $0.filter { $0.key.tenant == tenant }.map(\.value) }
    }

    public var allStores: [MapStore] {
        stores.withLock { Array($0.values) }
    }

    /// Drops every map of a tenant from memory (records, Merkle trees, live queries).
    /// `forever`: the tenant is deleted, and no map of it is registered again.
    public func removeTenant(_ tenant: TenantID, forever: Bool = false) {
        if forever {
            purged.withLock { _ = $0.insert(tenant) }
            clocks.remove(tenant)
        }
        stores.withLock { stores in stores = stores.filter { $0.key.tenant != tenant } }
    }

    /// Each tenant's bytes as storage would hold them (the encoded rows), for the storage
    /// quota when records live in memory only.
    public func storedBytes() async -> [TenantID: Int64] {
        var bytes: [TenantID: Int64] = [:]
        for (id, store) in stores.withLock({ $0 }) {
            bytes[id.tenant, default: 0] += await store.storedBytes()
        }
        return bytes
    }

    /// The tenants that have maps in memory.
    public var tenants: Set<TenantID> {
        stores.withLock { Set($0.keys.map(\.tenant)) }
    }
}
