import Tenancy
import TopGunCore

/// Where one record lives: tenant, map, key.
public struct StorageKey: Hashable, Sendable, Comparable {
    public var tenant: TenantID
    public var mapName: String
    public var key: String

    public init(tenant: TenantID, mapName: String, key: String) {
        self.tenant = tenant
        self.mapName = mapName
        self.key = key
    }

    /// Byte for byte, as the database compares the row's text columns: with `String`'s `==`
    /// "é" and "e\u{301}" would be one key, and the write-behind queue would coalesce two
    /// rows' writes into one.
    public static func == (lhs: StorageKey, rhs: StorageKey) -> Bool {
        lhs.tenant.rawValue.hasSameUTF8(as: rhs.tenant.rawValue) && lhs.mapName.hasSameUTF8(as: rhs.mapName) && lhs.key.hasSameUTF8(as: rhs.key)
    }

    /// `String`'s hash, equal for equal bytes (and for canonically equivalent strings,
    /// which then collide but stay distinct keys).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(tenant.rawValue)
        hasher.combine(mapName)
        hasher.combine(key)
    }

    /// By UTF-8 bytes, consistent with `==`.
    public static func < (lhs: StorageKey, rhs: StorageKey) -> Bool {
        if !lhs.tenant.rawValue.hasSameUTF8(as: rhs.tenant.rawValue) { return lhs.tenant.rawValue.utf8.lexicographicallyPrecedes(rhs.tenant.rawValue.utf8) }
        if !lhs.mapName.hasSameUTF8(as: rhs.mapName) { return lhs.mapName.utf8.lexicographicallyPrecedes(rhs.mapName.utf8) }
        return lhs.key.utf8.lexicographicallyPrecedes(rhs.key.utf8)
    }
}

/// What is stored under a key: the CRDT state exactly as merged, with the writers'
/// timestamps and OR tags.
public enum StoredValue: Sendable, Equatable {
    /// An LWW record; a tombstone is a record with a nil value.
    case lww(LWWRecord)
    /// Every record and tombstone of one OR-Map key.
    case orMap(ORMapEntry)
    /// A PN counter (the map name is the counters' namespace, the key the counter name).
    case counter(PNCounter)
}

/// One row of the record store.
public struct StoredRecord: Sendable, Equatable {
    public var key: StorageKey
    /// The tenant-aware partition (`PartitionFunction.partition(forKey:tenantID:)`).
    public var partition: Int
    public var value: StoredValue
    /// A hint, not data (`==` ignores it): false when the writer knows the storage has no row
    /// for this record yet, because its key was absent from the partition in memory (which
    /// holds every stored row once loaded). PostgreSQL then writes it with a plain `INSERT`,
    /// which costs about what `COPY` does, instead of an upsert. A wrong `false` costs one
    /// retry of the batch as an upsert, never data. Rows read from storage say true.
    public var mayExistInStorage: Bool
    /// The partition's sequence of the row's last change (`PartitionSequences`): what
    /// `POST /sync` orders changes by. 0 for rows written before sequences existed, and for
    /// counters.
    public var sequence: Int64

    public init(key: StorageKey, partition: Int, value: StoredValue, mayExistInStorage: Bool = true, sequence: Int64 = 0) {
        self.key = key
        self.partition = partition
        self.value = value
        self.mayExistInStorage = mayExistInStorage
        self.sequence = sequence
    }

    public static func == (lhs: StoredRecord, rhs: StoredRecord) -> Bool {
        lhs.key == rhs.key && lhs.partition == rhs.partition && lhs.value == rhs.value && lhs.sequence == rhs.sequence
    }
}

/// Durable record storage of a data-plane node (design.md §4). Implementations: PostgreSQL
/// (production), SQLite (embedded default) and memory (tests, benchmarks); one test suite
/// runs against all of them.
public protocol ServerStorage: Sendable {
    /// Creates what the store needs (idempotent).
    func prepare() async throws
    /// Every record of one partition, all tenants.
    func loadPartition(_ partition: Int) async throws -> [StoredRecord]
    /// Inserts or replaces `records` in one transaction: all or nothing. When one row
    /// (tenant, kind, map, key) appears twice, the later one is stored. Every record is
    /// validated first (`StoredRecord.validate()`): an invalid one fails the whole batch with
    /// `StorageError.invalidRecord` before anything is written.
    func store(_ records: [StoredRecord]) async throws
    /// `store`, for a node of a cluster: writes only the rows of partitions `claim` still
    /// holds, checked in the same transaction (design.md §6), and returns the partitions it
    /// refused (their rows were not written). Storages no other node writes store everything.
    func store(_ records: [StoredRecord], claiming claim: OwnershipClaim) async throws -> PartitionSet
    /// Deletes the rows of `keys` of one kind, or of every kind when `kind` is nil (tombstone
    /// pruning); unknown keys are ignored. One transaction: all or nothing.
    func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws
    /// Deletes every row of a tenant.
    func deleteTenant(_ tenant: TenantID) async throws
    /// Bytes of stored record payloads per tenant (tenants without rows are absent). A scan
    /// of all rows: called about once a minute, for the storage quota and usage.
    func storedBytes() async throws -> [TenantID: Int64]
    /// Whether the database answers now (for `/ready`).
    func isReachable() async -> Bool
    /// Closes connections.
    func shutdown() async
}

extension ServerStorage {
    /// Deletes the rows of `keys` of every kind (LWW, OR-Map and counter rows that share the
    /// tenant, map name and key).
    public func delete(_ keys: [StorageKey]) async throws {
        try await delete(keys, kind: nil)
    }
}
