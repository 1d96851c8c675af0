import Foundation
import Logging
import Metadata
import NIOCore
import SQLiteNIO
import Tenancy
import TopGunCore

/// Records in a SQLite file: the embedded default (`topgun dev`).
///
/// Durability: the database runs in WAL mode with `synchronous = NORMAL` (or `FULL`, see
/// `Synchronous`). A commit has then written its pages to the WAL file with `write()` before
/// `store()` returns, so the data is in the operating system's page cache: it survives the
/// process being killed (SIGKILL, a crash), which is what an acknowledged `PERSISTED` write
/// promises. It is synced to the disk at checkpoints, so a power loss or kernel crash may lose
/// the last commits (never corrupt the file); `.full` syncs the WAL at every commit (one
/// `fsync` per group commit) for machines where that matters.
///
/// sqlite-nio runs every call on its thread pool, never on an event loop. One connection
/// serves everything; a FIFO gate keeps each operation (a transaction of several statements)
/// apart from the others, since the connection knows nothing of tasks.
public actor SQLiteServerStorage: ServerStorage {
    /// When a commit reaches the disk.
    public enum Synchronous: String, Sendable {
        /// At checkpoints: a commit survives a process crash, not a power loss.
        case normal = "NORMAL"
        /// At every commit: survives a power loss too, at one `fsync` per flush.
        case full = "FULL"
    }

    /// The database file.
    public nonisolated let path: String
    public nonisolated let synchronous: Synchronous
    /// Rows per `INSERT` statement inside a batch's transaction (8 parameters each; SQLite
    /// allows 32,766 per statement). Internal so that tests can force multi-statement batches.
    private(set) var rowsPerStatement = 1_000

    private let logger: Logger
    private var connection: SQLiteConnection?
    private var isShutDown = false
    private var isBusy = false
    private var gateWaiters: [CheckedContinuation<Void, Never>] = []

    /// A storage on the file at `path` (created with its directory when missing). Nothing is
    /// opened until `prepare()` or the first operation.
    public init(path: String, synchronous: Synchronous = .normal, logger: Logger = Logger(label: "topgun.storage.sqlite")) {
        self.path = path
        self.synchronous = synchronous
        self.logger = logger
    }

    // MARK: ServerStorage

    /// Opens the file and runs the SQLite migrations (`SQLiteMigrationRunner`: idempotent,
    /// and safe next to another process migrating the same file), which create `records`.
    public func prepare() async throws {
        try await exclusively { connection in
            do {
                try await SQLiteMigrationRunner(connection: connection).run()
            } catch let error as MigrationError {
                throw StorageError.rejected(error.description)
            }
        }
    }

    public func loadPartition(_ partition: Int) async throws -> [StoredRecord] {
        let rows = try await exclusively { connection in
            try await connection.query(
                "SELECT tenant_id, kind, map_name, record_key, partition_id, payload, seq FROM records WHERE partition_id = ?",
                [.integer(partition)])
        }
        return try rows.map(Self.record(from:))
    }

    public func store(_ records: [StoredRecord]) async throws {
        for record in records { try record.validate() }
        try await write(records.lastPerIdentity())
    }

    /// Tests split batches into many statements to exercise the transaction.
    func setRowsPerStatement(_ rows: Int) {
        rowsPerStatement = max(1, rows)
    }

    /// Upserts `records` in one transaction without validating them first (tests use it to
    /// show that a row the database refuses rolls the whole batch back).
    func write(_ records: [StoredRecord]) async throws {
        guard !records.isEmpty else { return }
        let now = SQLiteData.integer(Int(Date().timeIntervalSince1970 * 1000))
        let rowsPerStatement = max(1, self.rowsPerStatement)
        // Encoding happens here, off the gate: the connection is only held while statements run.
        var chunks: [(sql: String, binds: [SQLiteData])] = []
        var start = 0
        while start < records.count {
            let end = min(start + rowsPerStatement, records.count)
            var binds: [SQLiteData] = []
            binds.reserveCapacity((end - start) * 8)
            for record in records[start..<end] {
                binds.append(.text(record.key.tenant.rawValue))
                binds.append(.text(record.value.kind.rawValue))
                binds.append(.text(record.key.mapName))
                binds.append(.text(record.key.key))
                binds.append(.integer(record.partition))
                binds.append(.blob(ByteBuffer(bytes: StoredValueCodec.encode(record.value))))
                binds.append(.integer(Int(record.sequence)))
                binds.append(now)
            }
            chunks.append((Self.upsertSQL(rows: end - start), binds))
            start = end
        }
        try await transaction { connection in
            for chunk in chunks {
                _ = try await connection.query(chunk.sql, chunk.binds)
            }
        }
    }

    public func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws {
        guard !keys.isEmpty else { return }
        let kinds = kind.map { [$0] } ?? StoredValue.Kind.allCases
        // Whole primary keys, so that every row is found through the index.
        var rows: [[SQLiteData]] = []
        rows.reserveCapacity(keys.count * kinds.count)
        for key in keys {
            for kind in kinds {
                rows.append([.text(key.tenant.rawValue), .text(kind.rawValue), .text(key.mapName), .text(key.key)])
            }
        }
        let perStatement = 1_000
        try await transaction { connection in
            var start = 0
            while start < rows.count {
                let end = min(start + perStatement, rows.count)
                let tuples = Array(repeating: "(?, ?, ?, ?)", count: end - start).joined(separator: ", ")
                _ = try await connection.query(
                    "DELETE FROM records WHERE (tenant_id, kind, map_name, record_key) IN (VALUES \(tuples))",
                    rows[start..<end].flatMap { $0 })
                start = end
            }
        }
    }

    public func deleteTenant(_ tenant: TenantID) async throws {
        try await transaction { connection in
            _ = try await connection.query("DELETE FROM records WHERE tenant_id = ?", [.text(tenant.rawValue)])
        }
    }

    public func storedBytes() async throws -> [TenantID: Int64] {
        let rows = try await exclusively { connection in
            try await connection.query("SELECT tenant_id, SUM(LENGTH(payload)) AS bytes FROM records GROUP BY tenant_id")
        }
        var bytes: [TenantID: Int64] = [:]
        for row in rows {
            guard let tenant = row.column("tenant_id")?.string, let count = row.column("bytes")?.integer else { continue }
            bytes[TenantID(tenant)] = Int64(count)
        }
        return bytes
    }

    public func isReachable() async -> Bool {
        do {
            let rows = try await exclusively { connection in
                try await connection.query("SELECT 1 AS ok")
            }
            return rows.first?.column("ok")?.integer == 1
        } catch {
            return false
        }
    }

    public func shutdown() async {
        guard !isShutDown else { return }
        isShutDown = true
        await enterGate()
        defer { leaveGate() }
        if let connection {
            self.connection = nil
            do {
                try await connection.close()
            } catch {
                logger.warning("closing the SQLite record store failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Connection and gate

    /// Runs `body` on the connection with no other operation in between, opening the
    /// connection first when needed.
    private func exclusively<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        await enterGate()
        defer { leaveGate() }
        guard !isShutDown else { throw StorageError.closed }
        let connection = try await openedConnection()
        do {
            return try await body(connection)
        } catch let error as StorageError {
            throw error
        } catch {
            throw Self.map(error)
        }
    }

    /// `body` inside `BEGIN IMMEDIATE` ... `COMMIT`, rolled back when anything throws.
    private func transaction(_ body: (SQLiteConnection) async throws -> Void) async throws {
        try await exclusively { connection in
            // IMMEDIATE takes the write lock up front, so another process writing the same file
            // makes us wait (busy_timeout) instead of failing half way through.
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                try await body(connection)
                _ = try await connection.query("COMMIT")
            } catch {
                do {
                    _ = try await connection.query("ROLLBACK")
                } catch {
                    logger.warning("SQLite rollback failed", metadata: ["error": "\(error)"])
                }
                throw error
            }
        }
    }

    private func openedConnection() async throws -> SQLiteConnection {
        if let connection { return connection }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw StorageError.unavailable("cannot create the directory of \(url.path): \(error)")
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: url.path), logger: logger)
        } catch {
            throw StorageError.unavailable("cannot open SQLite database \(url.path): \(error)")
        }
        do {
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            _ = try await connection.query("PRAGMA synchronous = \(synchronous.rawValue)")
            // Replaces sqlite-nio's busy handler, which retries at once, forever, spinning a thread.
            _ = try await connection.query("PRAGMA busy_timeout = 10000")
        } catch {
            try? await connection.close()
            throw Self.map(error)
        }
        self.connection = connection
        return connection
    }

    private func enterGate() async {
        if isBusy {
            await withCheckedContinuation { gateWaiters.append($0) }
        } else {
            isBusy = true
        }
    }

    private func leaveGate() {
        if gateWaiters.isEmpty {
            isBusy = false
        } else {
            // The gate stays busy: it passes straight to the next waiter.
            gateWaiters.removeFirst().resume()
        }
    }

    // MARK: Rows

    private static func upsertSQL(rows: Int) -> String {
        let tuples = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
        return """
            INSERT INTO records (tenant_id, kind, map_name, record_key, partition_id, payload, seq, updated_at) VALUES \(tuples)
            ON CONFLICT (tenant_id, kind, map_name, record_key) DO UPDATE SET
                partition_id = excluded.partition_id, payload = excluded.payload, seq = excluded.seq, updated_at = excluded.updated_at
            """
    }

    private static func record(from row: SQLiteRow) throws(StorageError) -> StoredRecord {
        guard let tenant = row.column("tenant_id")?.string,
            let kindText = row.column("kind")?.string,
            let mapName = row.column("map_name")?.string,
            let key = row.column("record_key")?.string,
            let partition = row.column("partition_id")?.integer
        else {
            throw .corruptPayload(row: nil, reason: "a records row has a missing or mistyped column")
        }
        let rowName = "\(tenant)/\(kindText)/\(mapName)/\(key)"
        guard let kind = StoredValue.Kind(rawValue: kindText) else {
            throw .corruptPayload(row: rowName, reason: "unknown kind '\(kindText)'")
        }
        guard case .blob(let payload)? = row.column("payload") else {
            throw .corruptPayload(row: rowName, reason: "payload is not a blob")
        }
        let value = try StoredValueCodec.decode(payload.readableBytesView, kind: kind, row: rowName)
        let sequence = Int64(row.column("seq")?.integer ?? 0)
        return StoredRecord(
            key: StorageKey(tenant: TenantID(tenant), mapName: mapName, key: key), partition: partition, value: value, sequence: sequence)
    }

    /// SQLite's constraint errors are the data's fault (retrying changes nothing); the rest
    /// (I/O, a full disk, a locked file) may pass.
    private static func map(_ error: any Error) -> StorageError {
        if let error = error as? SQLiteError {
            switch error.reason {
            case .constraint, .constraintCheckFailed, .constraintUniqueFailed, .constraintPrimaryKeyFailed,
                .constraintNotNullFailed, .constraintForeignKeyFailed, .mismatch, .tooBig, .range:
                return .rejected(error.description)
            default:
                return .unavailable(error.description)
            }
        }
        return .unavailable(String(describing: error))
    }
}
