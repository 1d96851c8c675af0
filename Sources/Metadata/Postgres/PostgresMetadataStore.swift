import Foundation
import Logging
import Migrations
import PostgresNIO
import Tenancy

/// The production metadata store, on PostgreSQL.
///
///     let store = try await PostgresMetadataStore.connect(
///         endpoint: PostgresEndpoint(url: "postgres://topgun@db:5432/topgun"), masterKey: key, logger: logger)
///     try await store.migrate()
///
/// `connect` fails within `connectTimeout` (default 5 s) with `MetadataError.unavailable` when
/// the server cannot be reached or refuses the login, instead of the pool's one-minute circuit
/// breaker. The store owns a `PostgresClient` (run in a task of its own until `shutdown()`) and
/// one dedicated connection in `LISTEN topgun_metadata`.
///
/// Every change is announced with `pg_notify` in the same transaction as the change (so
/// listeners hear only committed changes), with the JSON payload documented on
/// `MetadataNotification`. Every store on the database, including this one, hears it on
/// `changes()`. If the listening connection drops, the store reconnects and then publishes
/// `.resynchronize`.
///
/// The control plane's part (`ControlPlaneStore`), and the quotas, schemas and usage the data plane
/// reads and writes, are in `PostgresMetadataStore+ControlPlane.swift`.
public final class PostgresMetadataStore: MetadataStore {
    /// The `NOTIFY` channel of metadata changes.
    public static let notificationChannel = "topgun_metadata"

    public let endpoint: PostgresEndpoint
    /// The store's connection pool. Shared use is fine (e.g. tests reading raw rows).
    public let client: PostgresClient
    let secrets: SecretBox
    let logger: Logger
    private let broadcaster: MetadataChangeBroadcaster
    private let listener: PostgresChangeListener
    private let runTask: Task<Void, Never>
    /// How long one operation may wait (for a pooled connection, for the server). Beyond it the
    /// caller gets `.unavailable` instead of hanging until the pool's one-minute circuit breaker.
    let operationTimeout: Duration

    /// Connects to `endpoint`: checks it answers within `connectTimeout`, starts the pool and
    /// the change listener. Does not migrate: call `migrate()`.
    ///
    /// - Parameters:
    ///   - masterKey: 32 bytes; HS256 secrets are sealed under it (`SecretBox`).
    ///   - maximumConnections: the pool's size.
    ///   - operationTimeout: how long one operation may take before it fails with `.unavailable`.
    /// - Throws: `MetadataError.invalid` (bad master key), `.unavailable` (server unreachable,
    ///   login refused, LISTEN impossible), each with a message naming the server.
    public static func connect(
        endpoint: PostgresEndpoint,
        masterKey: [UInt8],
        logger: Logger = Logger(label: "topgun.metadata.postgres"),
        connectTimeout: Duration = .seconds(5),
        maximumConnections: Int = 10,
        operationTimeout: Duration = .seconds(10)
    ) async throws -> PostgresMetadataStore {
        let secrets = try SecretBox(masterKey: masterKey)
        try await endpoint.checkReachable(timeout: connectTimeout, logger: logger)
        let client = PostgresClient(
            configuration: endpoint.clientConfiguration(connectTimeout: connectTimeout, maximumConnections: maximumConnections),
            backgroundLogger: logger)
        let runTask = Task { await client.run() }
        let broadcaster = MetadataChangeBroadcaster()
        let listener = PostgresChangeListener(
            endpoint: endpoint, channel: notificationChannel, broadcaster: broadcaster, logger: logger, connectTimeout: connectTimeout)
        do {
            try await listener.start()
        } catch {
            runTask.cancel()
            await runTask.value
            throw PostgresErrors.map(error)
        }
        return PostgresMetadataStore(
            endpoint: endpoint, client: client, secrets: secrets, logger: logger, broadcaster: broadcaster, listener: listener,
            runTask: runTask, operationTimeout: operationTimeout)
    }

    /// `connect(endpoint:...)` with the endpoint parsed from a `postgres://` URL.
    public static func connect(
        url: String,
        masterKey: [UInt8],
        logger: Logger = Logger(label: "topgun.metadata.postgres"),
        connectTimeout: Duration = .seconds(5)
    ) async throws -> PostgresMetadataStore {
        try await connect(endpoint: try PostgresEndpoint(url: url), masterKey: masterKey, logger: logger, connectTimeout: connectTimeout)
    }

    private init(
        endpoint: PostgresEndpoint, client: PostgresClient, secrets: SecretBox, logger: Logger,
        broadcaster: MetadataChangeBroadcaster, listener: PostgresChangeListener, runTask: Task<Void, Never>,
        operationTimeout: Duration
    ) {
        self.operationTimeout = operationTimeout
        self.endpoint = endpoint
        self.client = client
        self.secrets = secrets
        self.logger = logger
        self.broadcaster = broadcaster
        self.listener = listener
        self.runTask = runTask
    }

    // MARK: MetadataStore

    public func migrate() async throws {
        try await PostgresMigrationRunner(client: client, logger: logger).run()
    }

    public func createTenant(slug: String, displayName: String, plan: String) async throws -> Tenant {
        try MetadataValidation.checkSlug(slug)
        try MetadataValidation.checkDisplayName(displayName)
        try MetadataValidation.checkPlan(plan)
        let id = IDGenerator.tenantID()
        do {
            return try await transaction { connection, logger in
                // One statement inserts the tenant and its quotas row (following its plan), so
                // creating a tenant costs no extra round trip.
                let rows = try await connection.rows(
                    """
                    WITH tenant AS (
                        INSERT INTO tenants (id, slug, display_name, plan, status)
                        VALUES (\(id.rawValue), \(slug), \(displayName), \(plan), 'active')
                        RETURNING \(unescaped: Self.tenantColumns)
                    ), quotas AS (
                        INSERT INTO tenant_quotas (tenant_id, version, updated_at) SELECT id, 1, created_at FROM tenant
                    )
                    SELECT \(unescaped: Self.tenantColumns) FROM tenant
                    """, logger: logger)
                guard let tenant = try rows.first.map(Self.decodeTenant) else {
                    throw MetadataError.unavailable("INSERT ... RETURNING gave no row")
                }
                try await Self.notify(.tenant(id), on: connection, logger: logger)
                return tenant
            }
        } catch MetadataError.conflict {
            throw MetadataError.conflict("slug '\(slug)' is taken")
        }
    }

    public func tenant(id: TenantID) async throws -> Tenant? {
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { return nil }
        return try await read("SELECT \(unescaped: Self.tenantColumns) FROM tenants WHERE id = \(id.rawValue)")
            .first.map(Self.decodeTenant)
    }

    public func tenant(slug: String) async throws -> Tenant? {
        guard MetadataValidation.isPlausibleIdentifier(slug) else { return nil }
        return try await read("SELECT \(unescaped: Self.tenantColumns) FROM tenants WHERE slug = \(slug)")
            .first.map(Self.decodeTenant)
    }

    public func setTenantStatus(_ id: TenantID, _ status: Tenant.Status) async throws -> Tenant {
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { throw MetadataError.notFound("tenant \(id)") }
        return try await transaction { connection, logger in
            let rows = try await connection.rows(
                """
                UPDATE tenants SET status = \(status.rawValue), updated_at = now() WHERE id = \(id.rawValue)
                RETURNING \(unescaped: Self.tenantColumns)
                """, logger: logger)
            guard let tenant = try rows.first.map(Self.decodeTenant) else { throw MetadataError.notFound("tenant \(id)") }
            try await Self.notify(.tenant(id), on: connection, logger: logger)
            return tenant
        }
    }

    public func createSigningKey(tenant: TenantID, algorithm: SigningAlgorithm, material: SigningKey.Material) async throws -> SigningKey {
        try MetadataValidation.checkKeyMaterial(material, for: algorithm)
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { throw MetadataError.notFound("tenant \(tenant)") }
        let kid = IDGenerator.keyID()
        var sealed: Data?
        var publicKey: String?
        switch material {
        case .hmacSecret(let secret): sealed = Data(try secrets.seal(secret, kid: kid))
        case .publicKeyPEM(let text): publicKey = text
        }
        let (sealedSecret, publicKeyText) = (sealed, publicKey)
        let createdAt: Date
        do {
            createdAt = try await transaction { connection, logger in
                let rows = try await connection.rows(
                    """
                    INSERT INTO signing_keys (kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status)
                    VALUES (\(kid), \(tenant.rawValue), \(algorithm.rawValue), \(sealedSecret), \(publicKeyText), 'active')
                    RETURNING created_at
                    """, logger: logger)
                guard let createdAt = try rows.first?.decode(PostgresTimestamp.self).date else {
                    throw MetadataError.unavailable("INSERT ... RETURNING gave no row")
                }
                try await Self.notify(.signingKey(kid: kid, tenant: tenant), on: connection, logger: logger)
                return createdAt
            }
        } catch MetadataError.notFound {
            throw MetadataError.notFound("tenant \(tenant)")  // the foreign key said so
        }
        return SigningKey(kid: kid, tenant: tenant, algorithm: algorithm, material: material, status: .active, createdAt: createdAt)
    }

    public func signingKey(kid: String) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        return try await read("SELECT \(unescaped: Self.keyColumns) FROM signing_keys WHERE kid = \(kid)")
            .first.map(decodeKey)
    }

    public func signingKeys(tenant: TenantID) async throws -> [SigningKey] {
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { throw MetadataError.notFound("tenant \(tenant)") }
        let rows = try await read(
            "SELECT \(unescaped: Self.keyColumns) FROM signing_keys WHERE tenant_id = \(tenant.rawValue) ORDER BY created_at, kid")
        if rows.isEmpty, try await read("SELECT 1 FROM tenants WHERE id = \(tenant.rawValue)").isEmpty {
            throw MetadataError.notFound("tenant \(tenant)")
        }
        return try rows.map(decodeKey)
    }

    public func revokeSigningKey(kid: String) async throws -> SigningKey {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { throw MetadataError.notFound("signing key \(kid)") }
        return try await transaction { connection, logger -> SigningKey in
            let revoked = try await connection.rows(
                """
                UPDATE signing_keys SET status = 'revoked', revoked_at = now()
                WHERE kid = \(kid) AND status = 'active'
                RETURNING \(unescaped: Self.keyColumns)
                """, logger: logger)
            if let row = revoked.first {
                let key = try self.decodeKey(row)
                try await Self.notify(.signingKey(kid: kid, tenant: key.tenant), on: connection, logger: logger)
                return key
            }
            // Already revoked (idempotent: the first revocation time stands) or unknown.
            guard let existing = try await connection.rows(
                "SELECT \(unescaped: Self.keyColumns) FROM signing_keys WHERE kid = \(kid)", logger: logger).first
            else { throw MetadataError.notFound("signing key \(kid)") }
            return try self.decodeKey(existing)
        }
    }

    public func changes() -> AsyncStream<MetadataChange> {
        broadcaster.subscribe(owner: ObjectIdentifier(self))
    }

    public func shutdown() async {
        await listener.stop()
        broadcaster.finish(owner: ObjectIdentifier(self))
        runTask.cancel()
        await runTask.value
    }

    // MARK: Internals

    private static let tenantColumns = PostgresRecordCodec.tenantColumns
    private static let keyColumns = PostgresRecordCodec.keyColumns

    /// Publishes `change` to every listener, when (and only if) the transaction commits.
    private static func notify(_ change: MetadataChange, on connection: PostgresConnection, logger: Logger) async throws {
        guard let payload = MetadataNotification(change)?.json else { return }
        try await connection.rows("SELECT pg_notify(\(notificationChannel), \(payload))", logger: logger)
    }

    /// Runs one statement on a pooled connection (committed at once); errors become `MetadataError`.
    @discardableResult
    func read(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (client, logger) = (self.client, self.logger)
        do {
            return try await withDeadline(operationTimeout) { try await client.rows(query, logger: logger) }
        } catch {
            throw PostgresErrors.map(error)
        }
    }

    /// Runs `body` in a transaction on one pooled connection; errors become `MetadataError`.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await inTransaction { connection in try await body(connection, logger) }
    }

    /// Runs `body` between `BEGIN` and `COMMIT` (READ COMMITTED, the server's default) on one
    /// pooled connection, within `operationTimeout`; rolls back if `body` throws. Database
    /// errors become `MetadataError`; a `TransactionBodyError` is unwrapped and rethrown as is.
    func inTransaction<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, logger, timeout) = (self.client, self.logger, self.operationTimeout)
        do {
            // The deadline runs `body` in a child task that ends before `withDeadline` returns.
            return try await withoutActuallyEscaping(body) { body in
                try await withDeadline(timeout) {
                    try await client.withConnection { connection in
                        try await connection.rows("BEGIN ISOLATION LEVEL READ COMMITTED", logger: logger)
                        let result: T
                        do {
                            result = try await body(connection)
                            // Past the deadline the caller hears of a failure: do not commit behind its back.
                            try Task.checkCancellation()
                        } catch {
                            _ = try? await connection.rows("ROLLBACK", logger: logger)
                            throw error
                        }
                        try await connection.rows("COMMIT", logger: logger)
                        return result
                    }
                }
            }
        } catch let failure as TransactionBodyError {
            throw failure.error
        } catch {
            throw PostgresErrors.map(error)
        }
    }

    private static func decodeTenant(_ row: PostgresRow) throws -> Tenant {
        try PostgresRecordCodec.tenant(row)
    }

    private func decodeKey(_ row: PostgresRow) throws -> SigningKey {
        try PostgresRecordCodec.signingKey(row, secrets: secrets)
    }
}
