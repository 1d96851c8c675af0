import Foundation
import Logging
import Migrations
import SQLiteNIO
import Synchronization
import Tenancy

/// The embedded metadata store (`topgun dev`): one SQLite file in WAL mode, or memory.
///
///     let store = try await SQLiteMetadataStore.open(.file(".topgun/dev.sqlite"), masterKey: key)
///     try await store.migrate()
///
/// One connection, used by one task at a time (`SerialGate`), so every method is a
/// transaction of its own; a `write` (`ControlPlaneStore`, in
/// `SQLiteMetadataStore+ControlPlane.swift`) holds it for its whole closure. The change stream is an in-process broadcast sent after the commit;
/// every store opened on the same file in this process shares it, so a change made through
/// one instance reaches the streams of all of them. Changes made by another process are not
/// seen (run the control plane and data plane of `topgun dev` in one process).
public final class SQLiteMetadataStore: MetadataStore {
    /// Where the database lives.
    public enum Location: Sendable, Equatable {
        /// A private in-memory database, gone at shutdown.
        case memory
        /// A file; its parent directory is created if missing.
        case file(String)
    }

    public let location: Location
    let connection: SQLiteConnection
    let secrets: SecretBox
    let gate = SerialGate()
    let broadcaster: MetadataChangeBroadcaster
    private let logger: Logger
    private let isShutDown = Mutex(false)

    /// The store whose `write` the current task is inside: its gate is held, so calling the
    /// store itself (instead of the transaction) would wait for ever; it throws instead.
    @TaskLocal static var writing: ObjectIdentifier?

    /// Opens (creating if needed) the database. Does not migrate: call `migrate()`.
    ///
    /// - Parameters:
    ///   - masterKey: 32 bytes; HS256 secrets are sealed under it (`SecretBox`).
    /// - Throws: `MetadataError.invalid` for a bad master key, `.unavailable` if the file cannot
    ///   be opened.
    public static func open(
        _ location: Location,
        masterKey: [UInt8],
        logger: Logger = Logger(label: "topgun.metadata.sqlite")
    ) async throws -> SQLiteMetadataStore {
        let secrets = try SecretBox(masterKey: masterKey)
        let storage: SQLiteConnection.Storage
        let broadcaster: MetadataChangeBroadcaster
        switch location {
        case .memory:
            storage = .memory
            broadcaster = MetadataChangeBroadcaster()
        case .file(let path):
            let url = URL(fileURLWithPath: path).standardizedFileURL
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw MetadataError.unavailable("cannot create the directory of \(url.path): \(error)")
            }
            storage = .file(path: url.path)
            broadcaster = SQLiteChangeHub.broadcaster(for: url.resolvingSymlinksInPath().path)
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: storage, logger: logger)
        } catch {
            throw MetadataError.unavailable("cannot open SQLite database \(location): \(error)")
        }
        do {
            if case .file = location {
                // WAL: readers (other connections, e.g. record storage) never block the writer.
                _ = try await connection.query("PRAGMA journal_mode = WAL")
            }
            // Off by default in SQLite; the schema relies on it (keys need their tenant).
            _ = try await connection.query("PRAGMA foreign_keys = ON")
            // Wait (sleeping) up to 10 s for another connection's write lock, then fail with
            // `.unavailable`; replaces sqlite-nio's handler, which retries forever without sleeping.
            _ = try await connection.query("PRAGMA busy_timeout = 10000")
        } catch {
            try? await connection.close()
            throw SQLiteErrors.map(error)
        }
        return SQLiteMetadataStore(location: location, connection: connection, secrets: secrets, broadcaster: broadcaster, logger: logger)
    }

    private init(location: Location, connection: SQLiteConnection, secrets: SecretBox, broadcaster: MetadataChangeBroadcaster, logger: Logger) {
        self.location = location
        self.connection = connection
        self.secrets = secrets
        self.broadcaster = broadcaster
        self.logger = logger
    }

    // MARK: MetadataStore

    public func migrate() async throws {
        try await exclusive(.none) { connection in
            let applied = try await SQLiteMigrationRunner(connection: connection).run()
            for migration in applied {
                self.logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }

    public func createTenant(slug: String, displayName: String, plan: String) async throws -> Tenant {
        try MetadataValidation.checkSlug(slug)
        try MetadataValidation.checkDisplayName(displayName)
        try MetadataValidation.checkPlan(plan)
        let now = SQLiteTime.now()
        let tenant = Tenant(id: IDGenerator.tenantID(), slug: slug, displayName: displayName, plan: plan, status: .active, createdAt: SQLiteTime.date(now))
        do {
            try await exclusive { connection in
                _ = try await connection.query(
                    """
                    INSERT INTO tenants (id, slug, display_name, plan, status, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(tenant.id.rawValue), .text(slug), .text(displayName), .text(plan), .text(tenant.status.rawValue), .integer(now), .integer(now)])
                try await Self.insertDefaultQuotas(tenant: tenant.id, at: tenant.createdAt, on: connection)
            }
        } catch MetadataError.conflict {
            throw MetadataError.conflict("slug '\(slug)' is taken")
        }
        broadcaster.publish(.tenant(tenant.id))
        return tenant
    }

    public func tenant(id: TenantID) async throws -> Tenant? {
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { return nil }
        return try await exclusive(.none) { connection in
            try await connection.query("SELECT \(SQLiteRecords.tenantColumns) FROM tenants WHERE id = ?", [.text(id.rawValue)])
                .first.map(SQLiteRecords.tenant)
        }
    }

    public func tenant(slug: String) async throws -> Tenant? {
        guard MetadataValidation.isPlausibleIdentifier(slug) else { return nil }
        return try await exclusive(.none) { connection in
            try await connection.query("SELECT \(SQLiteRecords.tenantColumns) FROM tenants WHERE slug = ?", [.text(slug)])
                .first.map(SQLiteRecords.tenant)
        }
    }

    public func setTenantStatus(_ id: TenantID, _ status: Tenant.Status) async throws -> Tenant {
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { throw MetadataError.notFound("tenant \(id)") }
        let updated = try await exclusive { connection in
            // The life-cycle times follow the status (set while suspended, set once deleted).
            try await connection.query(
                """
                UPDATE tenants SET status = ?1, updated_at = ?2,
                    suspended_at = CASE WHEN ?1 = 'suspended' THEN coalesce(suspended_at, ?2) END,
                    suspension_reason = CASE WHEN ?1 = 'suspended' THEN suspension_reason END,
                    deleted_at = CASE WHEN ?1 = 'deleted' THEN coalesce(deleted_at, ?2) END
                WHERE id = ?3 RETURNING \(SQLiteRecords.tenantColumns)
                """,
                [.text(status.rawValue), .integer(SQLiteTime.now()), .text(id.rawValue)]
            ).first.map(SQLiteRecords.tenant)
        }
        guard let updated else { throw MetadataError.notFound("tenant \(id)") }
        broadcaster.publish(.tenant(id))
        return updated
    }

    public func createSigningKey(tenant: TenantID, algorithm: SigningAlgorithm, material: SigningKey.Material) async throws -> SigningKey {
        try MetadataValidation.checkKeyMaterial(material, for: algorithm)
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { throw MetadataError.notFound("tenant \(tenant)") }
        let kid = IDGenerator.keyID()
        let now = SQLiteTime.now()
        let sealed: SQLiteData
        let publicKey: SQLiteData
        switch material {
        case .hmacSecret(let secret):
            sealed = .blob(ByteBuffer(bytes: try secrets.seal(secret, kid: kid)))
            publicKey = .null
        case .publicKeyPEM(let text):
            sealed = .null
            publicKey = .text(text)
        }
        try await exclusive { connection in
            guard try await !connection.query("SELECT 1 FROM tenants WHERE id = ?", [.text(tenant.rawValue)]).isEmpty else {
                throw MetadataError.notFound("tenant \(tenant)")
            }
            _ = try await connection.query(
                """
                INSERT INTO signing_keys (kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status, created_at)
                VALUES (?, ?, ?, ?, ?, 'active', ?)
                """,
                [.text(kid), .text(tenant.rawValue), .text(algorithm.rawValue), sealed, publicKey, .integer(now)])
        }
        broadcaster.publish(.signingKey(kid: kid, tenant: tenant))
        return SigningKey(kid: kid, tenant: tenant, algorithm: algorithm, material: material, status: .active, createdAt: SQLiteTime.date(now))
    }

    public func signingKey(kid: String) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        let row = try await exclusive(.none) { connection in
            try await connection.query("SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE kid = ?", [.text(kid)]).first
        }
        return try row.map { try SQLiteRecords.signingKey($0, secrets: secrets) }
    }

    public func signingKeys(tenant: TenantID) async throws -> [SigningKey] {
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { throw MetadataError.notFound("tenant \(tenant)") }
        let rows = try await exclusive { connection in
            let rows = try await connection.query(
                "SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE tenant_id = ? ORDER BY created_at, kid", [.text(tenant.rawValue)])
            if rows.isEmpty, try await connection.query("SELECT 1 FROM tenants WHERE id = ?", [.text(tenant.rawValue)]).isEmpty {
                throw MetadataError.notFound("tenant \(tenant)")
            }
            return rows
        }
        return try rows.map { try SQLiteRecords.signingKey($0, secrets: secrets) }
    }

    public func revokeSigningKey(kid: String) async throws -> SigningKey {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { throw MetadataError.notFound("signing key \(kid)") }
        let (row, changed) = try await exclusive { connection -> (SQLiteRow?, Bool) in
            let revoked = try await connection.query(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? WHERE kid = ? AND status = 'active' RETURNING \(SQLiteRecords.keyColumns)",
                [.integer(SQLiteTime.now()), .text(kid)]
            ).first
            if let revoked { return (revoked, true) }
            // Already revoked (idempotent: the first revocation time stands) or unknown.
            return (try await connection.query("SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE kid = ?", [.text(kid)]).first, false)
        }
        guard let row else { throw MetadataError.notFound("signing key \(kid)") }
        let key = try SQLiteRecords.signingKey(row, secrets: secrets)
        if changed { broadcaster.publish(.signingKey(kid: kid, tenant: key.tenant)) }
        return key
    }

    public func changes() -> AsyncStream<MetadataChange> {
        broadcaster.subscribe(owner: ObjectIdentifier(self))
    }

    public func shutdown() async {
        let first = isShutDown.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        broadcaster.finish(owner: ObjectIdentifier(self))
        _ = try? await gate.run {
            do {
                try await connection.close()
            } catch {
                logger.warning("closing the SQLite metadata store failed", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Raw access (tests, tools)

    /// Runs one SQL statement with the store's connection, in turn with the store's own work,
    /// and returns its rows. For tests and maintenance tools, not for application code.
    public func rawQuery(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await exclusive(.none) { connection in try await connection.query(sql, binds) }
    }

    // MARK: Internals

    /// Whether `exclusive` wraps its body in a transaction.
    enum Transaction {
        /// Single statements and reads; and the migration runner, which makes its own.
        case none
        /// `BEGIN IMMEDIATE`: takes SQLite's write lock up front, so two processes writing
        /// the file wait for each other instead of failing at COMMIT.
        case immediate
    }

    /// Runs `body` with the connection, alone, mapping errors to `MetadataError`. A body of
    /// several statements that must be atomic runs in one `.immediate` call: nothing else can
    /// touch the connection in between, and it commits or rolls back whole.
    func exclusive<T: Sendable>(
        _ transaction: Transaction = .immediate, _ body: @Sendable (SQLiteConnection) async throws -> T
    ) async throws -> T {
        try checkUsable()
        do {
            return try await gate.run {
                switch transaction {
                case .none: try await body(connection)
                case .immediate: try await inTransaction(body)
                }
            }
        } catch {
            throw SQLiteErrors.map(error)
        }
    }

    private func inTransaction<T: Sendable>(_ body: @Sendable (SQLiteConnection) async throws -> T) async throws -> T {
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            let result = try await body(connection)
            _ = try await connection.query("COMMIT")
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    /// Throws if the store is shut down, or if called from inside its own `write`.
    func checkUsable() throws(MetadataError) {
        guard !isShutDown.withLock({ $0 }) else { throw .unavailable("the metadata store is shut down") }
        guard Self.writing != ObjectIdentifier(self) else {
            throw .invalid("the metadata store was called from inside its own write: use the transaction")
        }
    }

    /// Every tenant has a quotas row from its creation: version 1, following its plan.
    static func insertDefaultQuotas(tenant: TenantID, at time: Date, on connection: SQLiteConnection) async throws {
        _ = try await connection.query(
            "INSERT INTO tenant_quotas (tenant_id, version, updated_at) VALUES (?, 1, ?)", [.text(tenant.rawValue), .time(time)])
    }
}

/// SQLite stores times as integer microseconds since 1970 (UTC); both directions go through
/// here, so a value read back equals the value written.
enum SQLiteTime {
    static func now() -> SQLiteInt64 { micros(Date()) }
    static func micros(_ date: Date) -> SQLiteInt64 { SQLiteInt64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    static func date(_ micros: SQLiteInt64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}

/// One change broadcaster per database file in this process, so stores opened on the same file
/// see each other's changes.
enum SQLiteChangeHub {
    private static let broadcasters = Mutex<[String: MetadataChangeBroadcaster]>([:])

    static func broadcaster(for path: String) -> MetadataChangeBroadcaster {
        broadcasters.withLock { all in
            if let existing = all[path] { return existing }
            let created = MetadataChangeBroadcaster()
            all[path] = created
            return created
        }
    }
}

extension SQLiteRow {
    func requiredText(_ column: String) throws -> String {
        guard let value = self.column(column)?.string else {
            throw MetadataError.unavailable("row has no text column \(column)")
        }
        return value
    }

    func requiredInteger(_ column: String) throws -> SQLiteInt64 {
        guard let data = self.column(column), case .integer(let value) = data else {
            throw MetadataError.unavailable("row has no integer column \(column)")
        }
        return value
    }
}
