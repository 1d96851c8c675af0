import Tenancy

/// Records in memory only: for tests, benchmarks and `--storage memory`. Nothing survives
/// the process. Behaves like the database storages (validation, atomic batches, upsert by
/// row), so the shared storage test suite runs against it too.
public actor MemoryServerStorage: ServerStorage {
    private var rows: [RecordIdentity: StoredRecord] = [:]
    /// Rows per partition, so that loading one partition does not scan every row.
    private var partitions: [Int: Set<RecordIdentity>] = [:]
    private var isShutDown = false

    public init() {}

    public func prepare() async throws {
        guard !isShutDown else { throw StorageError.closed }
    }

    public func loadPartition(_ partition: Int) async throws -> [StoredRecord] {
        guard !isShutDown else { throw StorageError.closed }
        return partitions[partition, default: []].compactMap { rows[$0] }
    }

    public func store(_ records: [StoredRecord]) async throws {
        guard !isShutDown else { throw StorageError.closed }
        // Validate everything before the first write: the batch is all or nothing.
        for record in records { try record.validate() }
        for var record in records {
            record.mayExistInStorage = true  // as a database would read it back
            let identity = record.identity
            if let previous = rows.updateValue(record, forKey: identity), previous.partition != record.partition {
                partitions[previous.partition]?.remove(identity)
            }
            partitions[record.partition, default: []].insert(identity)
        }
    }

    public func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws {
        guard !isShutDown else { throw StorageError.closed }
        let kinds = kind.map { [$0] } ?? StoredValue.Kind.allCases
        for key in keys {
            for kind in kinds {
                let identity = RecordIdentity(key: key, kind: kind)
                if let removed = rows.removeValue(forKey: identity) {
                    partitions[removed.partition]?.remove(identity)
                }
            }
        }
    }

    public func deleteTenant(_ tenant: TenantID) async throws {
        guard !isShutDown else { throw StorageError.closed }
        for (identity, record) in rows where identity.key.tenant == tenant {
            rows.removeValue(forKey: identity)
            partitions[record.partition]?.remove(identity)
        }
    }

    public func storedBytes() async throws -> [TenantID: Int64] {
        guard !isShutDown else { throw StorageError.closed }
        var bytes: [TenantID: Int64] = [:]
        for (identity, record) in rows {
            bytes[identity.key.tenant, default: 0] += Int64(StoredValueCodec.encode(record.value).count)
        }
        return bytes
    }

    public func isReachable() async -> Bool { !isShutDown }

    public func shutdown() async {
        isShutDown = true
    }

    /// How many rows are stored (for tests and the memory mode's metrics).
    public var count: Int { rows.count }
}
