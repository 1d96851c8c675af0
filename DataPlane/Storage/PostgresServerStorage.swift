import Logging
import Metadata
import NIOCore
import PostgresNIO
import Tenancy
import TopGunCore

/// Records in PostgreSQL: the production storage.
///
/// A `PostgresClient` pool does the I/O; its `run()` goes on in a task this storage starts at
/// `init` and ends at `shutdown()`. A batch is written by `WriteRecordsStatement`: columns
/// as binary arrays through `unnest`, a plain `INSERT` for rows known to be new and `ON
/// CONFLICT DO UPDATE` for the rest, as a named prepared statement, so a 5,000-row flush is
/// one round trip; batches larger than `rowsPerStatement` run as several such statements in
/// one transaction.
///
/// Durability: a `store()` returns after PostgreSQL's `COMMIT`, so with the server's default
/// `synchronous_commit = on` the batch is on disk. (The throw-away test cluster of
/// `ops/postgres` turns fsync off for speed; production must not.)
public final class PostgresServerStorage: ServerStorage {
    /// The database, without the password (for logs).
    public let databaseDescription: String
    /// Rows per write statement; a larger batch becomes several statements in one transaction.
    let rowsPerStatement: Int

    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger
    private let connectTimeout: Duration
    /// The single connection of the fail-fast check in `prepare()`.
    private let probeConfiguration: @Sendable () throws -> PostgresConnection.Configuration

    /// Creates the pool and starts its background task; connects lazily. Call `prepare()`
    /// next: it fails fast, with the server's own reason, when PostgreSQL cannot be reached.
    /// - Parameters:
    ///   - maximumConnections: the pool's limit (flushes use one; loading partitions at start
    ///     may use more).
    ///   - connectTimeout: how long a connection attempt may take before it counts as failed.
    public convenience init(
        endpoint: PostgresEndpoint,
        maximumConnections: Int = 4,
        connectTimeout: Duration = .seconds(5),
        logger: Logger = Logger(label: "topgun.storage.postgres")
    ) {
        self.init(endpoint: endpoint, maximumConnections: maximumConnections, connectTimeout: connectTimeout, rowsPerStatement: 20_000, logger: logger)
    }

    /// The same, splitting batches into statements of at most `rowsPerStatement` rows (tests).
    convenience init(endpoint: PostgresEndpoint, maximumConnections: Int, connectTimeout: Duration, rowsPerStatement: Int, logger: Logger) {
        self.init(
            client: endpoint.clientConfiguration(connectTimeout: connectTimeout, maximumConnections: max(1, maximumConnections)),
            probe: { try endpoint.connectionConfiguration(connectTimeout: connectTimeout) },
            description: endpoint.description, connectTimeout: connectTimeout, rowsPerStatement: rowsPerStatement, logger: logger)
    }

    private init(
        client configuration: PostgresClient.Configuration,
        probe: @escaping @Sendable () throws -> PostgresConnection.Configuration,
        description: String, connectTimeout: Duration, rowsPerStatement: Int, logger: Logger
    ) {
        self.databaseDescription = description
        self.logger = logger
        self.connectTimeout = connectTimeout
        self.rowsPerStatement = max(1, rowsPerStatement)
        self.probeConfiguration = probe
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.runTask = Task { await client.run() }
    }

    // MARK: ServerStorage

    /// Checks that the server answers (a direct connection, so a refused login or a wrong port
    /// fails now with PostgreSQL's reason instead of after the pool's retries), then runs the
    /// PostgreSQL migrations (`PostgresMigrationRunner`: idempotent, and safe when several
    /// nodes start at once), which create the `records` table.
    public func prepare() async throws {
        try await probe()
        do {
            try await PostgresMigrationRunner(client: client, logger: logger).run()
        } catch let error as MigrationError {
            throw StorageError.rejected(error.description)
        } catch {
            throw StorageError.unavailable("migrating \(databaseDescription): \(error)")
        }
    }

    public func loadPartition(_ partition: Int) async throws -> [StoredRecord] {
        try await run("load partition \(partition)") {
            var records: [StoredRecord] = []
            let rows = try await self.client.query(
                "SELECT tenant_id, kind, map_name, record_key, payload, seq FROM records WHERE partition_id = \(Int32(partition))",
                logger: self.logger)
            for try await (tenant, kindText, mapName, key, payload, sequence) in rows.decode(
                (String, String, String, String, ByteBuffer, Int64).self)
            {
                let rowName = "\(tenant)/\(kindText)/\(mapName)/\(key)"
                guard let kind = StoredValue.Kind(rawValue: kindText) else {
                    throw StorageError.corruptPayload(row: rowName, reason: "unknown kind '\(kindText)'")
                }
                let value = try StoredValueCodec.decode(payload.readableBytesView, kind: kind, row: rowName)
                records.append(StoredRecord(
                    key: StorageKey(tenant: TenantID(tenant), mapName: mapName, key: key), partition: partition, value: value,
                    sequence: sequence))
            }
            return records
        }
    }

    public func store(_ records: [StoredRecord]) async throws {
        for record in records { try record.validate() }
        try await write(records.lastPerIdentity())
    }

    /// Writes the rows of the partitions `claim` holds, in one transaction that first locks
    /// those partitions' rows of `cluster_partitions` (`FOR SHARE`) where they still name the
    /// claiming node and its epoch, and its lease is live. The coordinator's update of a
    /// partition waits for this commit; a flush after that update finds the partition gone.
    public func store(_ records: [StoredRecord], claiming claim: OwnershipClaim) async throws -> PartitionSet {
        for record in records { try record.validate() }
        let records = records.lastPerIdentity()
        guard !records.isEmpty else { return PartitionSet() }
        let partitions = PartitionSet(records.lazy.map(\.partition))
        var claimedPartitions: [Int32] = []
        var claimedEpochs: [Int64] = []
        for partition in partitions {
            guard let epoch = claim.epochs[partition] else { continue }
            claimedPartitions.append(Int32(partition))
            claimedEpochs.append(epoch)
        }
        let check: PostgresQuery = """
            SELECT p.partition_id FROM cluster_partitions p
                JOIN unnest(\(claimedPartitions)::int4[], \(claimedEpochs)::int8[]) AS c(partition_id, epoch)
                    ON p.partition_id = c.partition_id AND p.epoch = c.epoch
                WHERE p.owner_node = \(claim.node.rawValue)
                    AND EXISTS (SELECT 1 FROM cluster_members m WHERE m.node_id = \(claim.node.rawValue)
                        AND m.incarnation = \(claim.incarnation) AND m.lease_expires_at > now())
                FOR SHARE OF p
            """
        func attempt(asUpserts: Bool) async throws -> PartitionSet {
            try await run("store \(records.count) records") {
                try await self.client.withTransaction(logger: self.logger) { connection in
                    var held = PartitionSet()
                    if !claimedPartitions.isEmpty {
                        let rows = try await connection.query(check, logger: self.logger)
                        for try await partition in rows.decode(Int32.self) { held.insert(Int(partition)) }
                    }
                    let kept = held == partitions ? records : records.filter { held.contains($0.partition) }
                    for statement in self.statements(for: kept) {
                        _ = try await connection.execute(asUpserts ? statement.allAsUpserts : statement, logger: self.logger)
                    }
                    return PartitionSet(partitions.lazy.filter { !held.contains($0) })
                }
            }
        }
        do {
            return try await attempt(asUpserts: false)
        } catch StorageError.rejected(let why) where why.contains("SQLSTATE 23505") {
            logger.debug("a new row existed already; writing the batch as upserts", metadata: ["rows": "\(records.count)"])
            return try await attempt(asUpserts: true)
        }
    }

    /// The write statements of `records`, at most `rowsPerStatement` rows each.
    private func statements(for records: [StoredRecord]) -> [WriteRecordsStatement] {
        var statements: [WriteRecordsStatement] = []
        var start = 0
        while start < records.count {
            let end = min(start + rowsPerStatement, records.count)
            statements.append(WriteRecordsStatement(records[start..<end], trustNewRows: true))
            start = end
        }
        return statements
    }

    /// Writes `records` (one per row) in one transaction without validating them first
    /// (tests use it to show that a row the database refuses rolls the whole batch back).
    func write(_ records: [StoredRecord]) async throws {
        guard !records.isEmpty else { return }
        let statements = statements(for: records)
        do {
            try await run("store \(records.count) records") { try await self.execute(statements) }
        } catch StorageError.rejected(let why) where why.contains("SQLSTATE 23505") && statements.contains(where: \.hasInserts) {
            // A row said to be new exists (a hint was wrong, or an earlier flush committed
            // although it reported a failure): write every row as an upsert.
            logger.debug("a new row existed already; writing the batch as upserts", metadata: ["rows": "\(records.count)"])
            let upserts = statements.map(\.allAsUpserts)
            try await run("store \(records.count) records") { try await self.execute(upserts) }
        }
    }

    private func execute(_ statements: [WriteRecordsStatement]) async throws {
        if statements.count == 1 {
            // One statement is atomic by itself: no BEGIN/COMMIT round trips.
            _ = try await client.withConnection { connection in
                try await connection.execute(statements[0], logger: self.logger)
            }
        } else {
            try await client.withTransaction(logger: logger) { connection in
                for statement in statements {
                    _ = try await connection.execute(statement, logger: self.logger)
                }
            }
        }
    }

    public func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws {
        guard !keys.isEmpty else { return }
        let kinds = kind.map { [$0] } ?? StoredValue.Kind.allCases
        var tenants = PostgresArrayColumn(.text, reservingBytes: keys.count * kinds.count * 24)
        var kindColumn = PostgresArrayColumn(.text, reservingBytes: keys.count * kinds.count * 10)
        var mapNames = PostgresArrayColumn(.text, reservingBytes: keys.count * kinds.count * 20)
        var recordKeys = PostgresArrayColumn(.text, reservingBytes: keys.count * kinds.count * 24)
        // Whole primary keys, so that every row is found through the index.
        for key in keys {
            for kind in kinds {
                tenants.append(key.tenant.rawValue)
                kindColumn.append(kind.rawValue)
                mapNames.append(key.mapName)
                recordKeys.append(key.key)
            }
        }
        try await run("delete \(keys.count) keys") {
            try await self.client.query("""
                DELETE FROM records WHERE (tenant_id, kind, map_name, record_key) IN
                    (SELECT * FROM unnest(\(tenants)::text[], \(kindColumn)::text[], \(mapNames)::text[], \(recordKeys)::text[]))
                """, logger: self.logger)
        }
    }

    public func deleteTenant(_ tenant: TenantID) async throws {
        try await run("delete tenant \(tenant)") {
            try await self.client.query("DELETE FROM records WHERE tenant_id = \(tenant.rawValue)", logger: self.logger)
        }
    }

    public func storedBytes() async throws -> [TenantID: Int64] {
        try await run("measure stored bytes") {
            var bytes: [TenantID: Int64] = [:]
            let rows = try await self.client.query(
                "SELECT tenant_id, SUM(octet_length(payload))::int8 FROM records GROUP BY tenant_id", logger: self.logger)
            for try await (tenant, count) in rows.decode((String, Int64).self) { bytes[TenantID(tenant)] = count }
            return bytes
        }
    }

    /// `SELECT 1` within two seconds.
    public func isReachable() async -> Bool {
        let client = self.client
        let logger = self.logger
        do {
            return try await withStorageTimeout(.seconds(2)) {
                let rows = try await client.query("SELECT 1::int4", logger: logger)
                for try await value in rows.decode(Int32.self) { return value == 1 }
                return false
            }
        } catch {
            return false
        }
    }

    /// Closes the pool's connections and ends its background task.
    public func shutdown() async {
        runTask.cancel()
        await runTask.value
    }

    // MARK: Helpers

    /// One direct connection and `SELECT 1`, bounded by the connect timeout.
    private func probe() async throws {
        let logger = self.logger
        let makeConfiguration = self.probeConfiguration
        do {
            try await withStorageTimeout(connectTimeout + .seconds(1)) {
                let connection = try await PostgresConnection.connect(configuration: try makeConfiguration(), id: 0, logger: logger)
                do {
                    try await connection.query("SELECT 1", logger: logger)
                } catch {
                    try? await connection.close()
                    throw error
                }
                try await connection.close()
            }
        } catch {
            throw StorageError.unavailable("cannot reach PostgreSQL at \(databaseDescription): \(Self.reason(error))")
        }
    }

    /// Runs `operation`, turning driver errors into `StorageError`s that say whether a retry
    /// can help.
    @discardableResult
    private func run<T: Sendable>(_ what: String, _ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as StorageError {
            throw error
        } catch {
            throw Self.map(error, what: what)
        }
    }

    static func map(_ error: any Error, what: String) -> StorageError {
        if let error = error as? PostgresTransactionError {
            if let inner = error.closureError ?? error.commitError ?? error.beginError {
                return map(inner, what: what)
            }
        }
        if let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] {
            // Class 22 (data exception) and 23 (integrity constraint) are the batch's fault;
            // 42 (syntax, undefined table) will not fix itself either. Everything else
            // (connection, shutdown, lock timeouts, disk full, ...) may pass.
            let message = error.serverInfo?[.message] ?? state
            if state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("42") {
                return .rejected("\(what): \(message) (SQLSTATE \(state))")
            }
            return .unavailable("\(what): \(message) (SQLSTATE \(state))")
        }
        if error is CancellationError { return .unavailable("\(what): cancelled") }
        return .unavailable("\(what): \(reason(error))")
    }

    /// PSQLError's `description` hides details on purpose; its debug description names the
    /// server's message and the underlying socket error, which an operator needs to see.
    static func reason(_ error: any Error) -> String {
        if let error = error as? StorageTimeoutError { return error.description }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return String(describing: underlying) }
            return String(reflecting: error)
        }
        return String(describing: error)
    }
}
