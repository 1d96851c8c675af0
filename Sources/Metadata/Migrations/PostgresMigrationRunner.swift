import Logging
import Migrations
import PostgresNIO

/// Applies `MigrationCatalog.migrations(for: .postgres)` to a PostgreSQL database:
///
///     try await PostgresMigrationRunner(client: client, logger: logger).run()
///
/// (the client must be running: `client.run()` in a task). `topgun migrate` uses
/// `PostgresMigrationRunner.migrate(endpoint:logger:)`, which manages a client itself.
///
/// Each pending migration runs in its own transaction that first takes
/// `pg_advisory_xact_lock(advisoryLockKey)`, then creates `schema_migrations(version, name,
/// applied_at)` if missing and re-checks the version: concurrent runners (several nodes
/// starting at once) take turns, and each migration is applied exactly once. A failing
/// migration rolls back whole and throws `MigrationError`; earlier ones stay applied.
///
/// Migration files must therefore be transactional (no `CREATE INDEX CONCURRENTLY`).
public struct PostgresMigrationRunner: Sendable {
    /// The advisory lock all runners share ("topgunMG" in ASCII).
    public static let advisoryLockKey: Int64 = 0x746F_7067_756E_4D47

    public let client: PostgresClient
    public let logger: Logger
    public let migrations: [Migration]

    /// - Parameter migrations: defaults to every PostgreSQL migration in the catalog.
    public init(client: PostgresClient, logger: Logger, migrations: [Migration] = MigrationCatalog.migrations(for: .postgres)) {
        self.client = client
        self.logger = logger
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is pending and returns the migrations this call applied.
    @discardableResult
    public func run() async throws -> [Migration] {
        var applied: [Migration] = []
        for migration in migrations {
            if try await apply(migration) {
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                applied.append(migration)
            }
        }
        return applied
    }

    /// The versions recorded in `schema_migrations`, ascending (empty before the first run).
    public func appliedVersions() async throws -> [Int] {
        do {
            let exists = try await client.rows("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
                .first?.decode(Bool.self) ?? false
            guard exists else { return [] }
            return try await client.rows("SELECT version FROM schema_migrations ORDER BY version", logger: logger)
                .map { Int(try $0.decode(Int32.self)) }
        } catch {
            throw PostgresErrors.map(error)
        }
    }

    /// Connects to `endpoint` (failing within `connectTimeout` if it cannot), applies pending
    /// migrations and disconnects. What `topgun migrate` runs.
    @discardableResult
    public static func migrate(endpoint: PostgresEndpoint, logger: Logger, connectTimeout: Duration = .seconds(5)) async throws -> [Migration] {
        try await endpoint.checkReachable(timeout: connectTimeout, logger: logger)
        let client = PostgresClient(configuration: endpoint.clientConfiguration(connectTimeout: connectTimeout, maximumConnections: 2), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await PostgresMigrationRunner(client: client, logger: logger).run()
        }
    }

    private func apply(_ migration: Migration) async throws -> Bool {
        let key = Self.advisoryLockKey
        let version = Int32(migration.version)
        let logger = self.logger
        do {
            return try await client.withConnection { connection in
                try await connection.rows("BEGIN", logger: logger)
                do {
                    try await connection.rows("SELECT pg_advisory_xact_lock(\(key))", logger: logger)
                    try await connection.rows(
                        """
                        CREATE TABLE IF NOT EXISTS schema_migrations (
                            version    INTEGER PRIMARY KEY,
                            name       TEXT NOT NULL,
                            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                        )
                        """, logger: logger)
                    let done = try await connection.rows(
                        "SELECT 1 FROM schema_migrations WHERE version = \(version)", logger: logger)
                    guard done.isEmpty else {
                        try await connection.rows("COMMIT", logger: logger)
                        return false
                    }
                    for statement in migration.statements {
                        do {
                            try await connection.rows(PostgresQuery(unsafeSQL: statement), logger: logger)
                        } catch {
                            throw MigrationError(version: migration.version, name: migration.name, message: PostgresErrors.describe(error))
                        }
                    }
                    try await connection.rows(
                        "INSERT INTO schema_migrations (version, name) VALUES (\(version), \(migration.name))", logger: logger
                    )
                    try await connection.rows("COMMIT", logger: logger)
                    return true
                } catch {
                    _ = try? await connection.rows("ROLLBACK", logger: logger)
                    throw error
                }
            }
        } catch {
            throw PostgresErrors.map(error)
        }
    }
}
