import Foundation
import Logging
import PostgresNIO
import Synchronization
import Tenancy

/// The `MetadataTransaction` of `PostgresMetadataStore.write`: every call runs on the one
/// connection that holds the open transaction (READ COMMITTED).
///
/// Inserts that can meet a taken unique value use `ON CONFLICT DO NOTHING` and report the
/// conflict themselves, so the transaction stays usable after a `.conflict`; any other failed
/// statement aborts the transaction and `write` then rolls it back.
final class PostgresMetadataTransaction: MetadataTransaction {
    private let connection: PostgresConnection
    private let logger: Logger
    private let secrets: SecretBox
    /// False once `write` is done with it: the connection is back in the pool by then.
    private let isOpen = Mutex(true)

    init(connection: PostgresConnection, logger: Logger, secrets: SecretBox) {
        self.connection = connection
        self.logger = logger
        self.secrets = secrets
    }

    /// Ends the transaction's use; every later call throws.
    func close() {
        isOpen.withLock { $0 = false }
    }

    // MARK: Tenants

    func lockTenant(_ id: TenantID) async throws -> Tenant? {
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { return nil }
        return try await execute(
            "SELECT \(unescaped: PostgresRecordCodec.tenantColumns) FROM tenants WHERE id = \(id.rawValue) FOR UPDATE"
        ).first.map(PostgresRecordCodec.tenant)
    }

    func insertTenant(_ tenant: Tenant) async throws {
        try MetadataValidation.checkSlug(tenant.slug)
        try MetadataValidation.checkDisplayName(tenant.displayName)
        try MetadataValidation.checkPlan(tenant.plan)
        let inserted = try await execute(
            """
            INSERT INTO tenants (id, slug, display_name, plan, status, created_at, updated_at, suspended_at, suspension_reason, deleted_at)
            VALUES (\(tenant.id.rawValue), \(tenant.slug), \(tenant.displayName), \(tenant.plan), \(tenant.status.rawValue),
                    \(tenant.createdAt.postgres), \(tenant.updatedAt.postgres), \(tenant.suspendedAt.postgres),
                    \(tenant.suspensionReason), \(tenant.deletedAt.postgres))
            ON CONFLICT DO NOTHING
            RETURNING id
            """)
        guard !inserted.isEmpty else {
            let slugTaken = try await !execute("SELECT 1 FROM tenants WHERE slug = \(tenant.slug)").isEmpty
            throw MetadataError.conflict(slugTaken ? "slug '\(tenant.slug)' is taken" : "tenant \(tenant.id) exists")
        }
        try await execute(
            "INSERT INTO tenant_quotas (tenant_id, version, updated_at) VALUES (\(tenant.id.rawValue), 1, \(tenant.createdAt.postgres))")
    }

    func updateTenant(_ tenant: Tenant) async throws {
        try MetadataValidation.checkDisplayName(tenant.displayName)
        try MetadataValidation.checkPlan(tenant.plan)
        let updated = try await execute(
            """
            UPDATE tenants SET display_name = \(tenant.displayName), plan = \(tenant.plan), status = \(tenant.status.rawValue),
                updated_at = \(tenant.updatedAt.postgres), suspended_at = \(tenant.suspendedAt.postgres),
                suspension_reason = \(tenant.suspensionReason), deleted_at = \(tenant.deletedAt.postgres)
            WHERE id = \(tenant.id.rawValue)
            RETURNING id
            """)
        guard !updated.isEmpty else { throw MetadataError.notFound("tenant \(tenant.id)") }
    }

    // MARK: Signing keys

    func signingKey(kid: String) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        let secrets = self.secrets
        return try await execute("SELECT \(unescaped: PostgresRecordCodec.keyColumns) FROM signing_keys WHERE kid = \(kid)")
            .first.map { try PostgresRecordCodec.signingKey($0, secrets: secrets) }
    }

    func countActiveSigningKeys(tenant: TenantID) async throws -> Int {
        let rows = try await execute(
            "SELECT count(*) FROM signing_keys WHERE tenant_id = \(tenant.rawValue) AND status = 'active'")
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    func insertSigningKey(_ key: SigningKey) async throws {
        try MetadataValidation.checkKeyMaterial(key.material, for: key.algorithm)
        var sealed: Data?
        var publicKey: String?
        switch key.material {
        case .hmacSecret(let secret): sealed = Data(try secrets.seal(secret, kid: key.kid))
        case .publicKeyPEM(let text): publicKey = text
        }
        let inserted: [PostgresRow]
        do {
            inserted = try await execute(
                """
                INSERT INTO signing_keys (kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status, created_at,
                                          revoked_at, label, public_key_jwk)
                VALUES (\(key.kid), \(key.tenant.rawValue), \(key.algorithm.rawValue), \(sealed), \(publicKey), \(key.status.rawValue),
                        \(key.createdAt.postgres), \(key.revokedAt.postgres), \(key.label), \(key.publicKeyJWK))
                ON CONFLICT (kid) DO NOTHING
                RETURNING kid
                """)
        } catch MetadataError.notFound {
            throw MetadataError.notFound("tenant \(key.tenant)")  // the foreign key said so
        }
        guard !inserted.isEmpty else { throw MetadataError.conflict("signing key \(key.kid) exists") }
    }

    func revokeSigningKey(kid: String, at: Date) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        let secrets = self.secrets
        let revoked = try await execute(
            """
            UPDATE signing_keys SET status = 'revoked', revoked_at = \(at.postgres)
            WHERE kid = \(kid) AND status = 'active'
            RETURNING \(unescaped: PostgresRecordCodec.keyColumns)
            """)
        if let row = revoked.first { return try PostgresRecordCodec.signingKey(row, secrets: secrets) }
        // Already revoked (the first revocation time stands) or unknown.
        return try await signingKey(kid: kid)
    }

    // MARK: Quotas

    func quotas(tenant: TenantID) async throws -> StoredQuotas? {
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { return nil }
        return try await execute(
            "SELECT \(unescaped: PostgresRecordCodec.quotaColumns) FROM tenant_quotas WHERE tenant_id = \(tenant.rawValue)"
        ).first.map(PostgresRecordCodec.storedQuotas)
    }

    func saveQuotas(_ quotas: StoredQuotas) async throws {
        let custom = quotas.custom
        do {
            try await execute(
                """
                INSERT INTO tenant_quotas (tenant_id, custom_max_connections, custom_max_operations_per_second,
                    custom_max_storage_bytes, custom_max_maps, custom_max_message_bytes, custom_max_live_subscriptions,
                    version, updated_at)
                VALUES (\(quotas.tenant.rawValue), \(custom?.maxConnections), \(custom?.maxOperationsPerSecond),
                    \(custom?.maxStorageBytes), \(custom?.maxMaps), \(custom?.maxMessageBytes), \(custom?.maxLiveSubscriptions),
                    \(quotas.version), \(quotas.updatedAt.postgres))
                ON CONFLICT (tenant_id) DO UPDATE SET
                    custom_max_connections = EXCLUDED.custom_max_connections,
                    custom_max_operations_per_second = EXCLUDED.custom_max_operations_per_second,
                    custom_max_storage_bytes = EXCLUDED.custom_max_storage_bytes,
                    custom_max_maps = EXCLUDED.custom_max_maps,
                    custom_max_message_bytes = EXCLUDED.custom_max_message_bytes,
                    custom_max_live_subscriptions = EXCLUDED.custom_max_live_subscriptions,
                    version = EXCLUDED.version,
                    updated_at = EXCLUDED.updated_at
                """)
        } catch MetadataError.notFound {
            throw MetadataError.notFound("tenant \(quotas.tenant)")  // the foreign key said so
        }
    }

    // MARK: Map schemas

    func schemaHead(tenant: TenantID, map: String) async throws -> MapSchemaHead? {
        let rows = try await execute(
            "SELECT current_version, latest_version FROM map_schemas WHERE tenant_id = \(tenant.rawValue) AND map = \(map)")
        guard let row = rows.first else { return nil }
        let (current, latest) = try row.decode((Int32?, Int32).self)
        return MapSchemaHead(current: current.map(Int.init), latest: Int(latest))
    }

    func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion? {
        guard let version = Int32(exactly: version) else { return nil }
        return try await execute(
            """
            SELECT \(unescaped: PostgresRecordCodec.schemaColumns) FROM map_schema_versions
            WHERE tenant_id = \(tenant.rawValue) AND map = \(map) AND version = \(version)
            """
        ).first.map(PostgresRecordCodec.schemaVersion)
    }

    func insertSchemaVersion(_ version: MapSchemaVersion) async throws {
        guard let number = Int32(exactly: version.version), number > 0 else {
            throw MetadataError.invalid("schema versions are numbered from 1")
        }
        do {
            try await execute(
                """
                INSERT INTO map_schemas (tenant_id, map, current_version, latest_version)
                VALUES (\(version.tenant.rawValue), \(version.map), \(number), \(number))
                ON CONFLICT (tenant_id, map) DO UPDATE SET
                    current_version = EXCLUDED.current_version,
                    latest_version = GREATEST(map_schemas.latest_version, EXCLUDED.latest_version)
                """)
        } catch MetadataError.notFound {
            throw MetadataError.notFound("tenant \(version.tenant)")  // the foreign key said so
        }
        let inserted = try await execute(
            """
            INSERT INTO map_schema_versions (tenant_id, map, version, enforcement, schema_json, created_at)
            VALUES (\(version.tenant.rawValue), \(version.map), \(number), \(version.enforcement.rawValue), \(version.schemaJSON),
                    \(version.createdAt.postgres))
            ON CONFLICT DO NOTHING
            RETURNING version
            """)
        guard !inserted.isEmpty else {
            throw MetadataError.conflict("version \(number) of schema \(version.map) exists")
        }
    }

    func clearCurrentSchema(tenant: TenantID, map: String) async throws {
        try await execute(
            "UPDATE map_schemas SET current_version = NULL WHERE tenant_id = \(tenant.rawValue) AND map = \(map)")
    }

    // MARK: Admin tokens

    func insertAdminToken(_ token: AdminTokenRecord) async throws {
        let inserted = try await execute(
            """
            INSERT INTO admin_tokens (id, name, scopes, value_hash, prefix, created_at, created_by, expires_at, last_used_at, revoked_at)
            VALUES (\(token.id), \(token.name), \(PostgresRecordCodec.scopesText(token.scopes)), \(Data(token.valueHash)),
                    \(token.prefix), \(token.createdAt.postgres), \(token.createdBy), \(token.expiresAt.postgres),
                    \(token.lastUsedAt.postgres), \(token.revokedAt.postgres))
            ON CONFLICT DO NOTHING
            RETURNING id
            """)
        guard !inserted.isEmpty else { throw MetadataError.conflict("admin token \(token.id) or its value exists") }
    }

    func revokeAdminToken(id: String, at: Date) async throws -> AdminTokenRecord? {
        guard MetadataValidation.isPlausibleIdentifier(id) else { return nil }
        let revoked = try await execute(
            """
            UPDATE admin_tokens SET revoked_at = \(at.postgres) WHERE id = \(id) AND revoked_at IS NULL
            RETURNING \(unescaped: PostgresRecordCodec.adminTokenColumns)
            """)
        if let row = revoked.first { return try PostgresRecordCodec.adminToken(row) }
        // Already revoked (the first revocation time stands) or unknown.
        return try await execute("SELECT \(unescaped: PostgresRecordCodec.adminTokenColumns) FROM admin_tokens WHERE id = \(id)")
            .first.map(PostgresRecordCodec.adminToken)
    }

    // MARK: Audit, idempotency, notifications

    func appendAudit(_ event: AuditEvent) async throws {
        try await execute(
            """
            INSERT INTO audit_events (id, time, actor, action, tenant_id, target_type, target_id, target_version, request_id,
                                      idempotency_key, details)
            VALUES (\(event.id), \(event.time.postgres), \(event.actor), \(event.action), \(event.tenant?.rawValue),
                    \(event.targetType), \(event.targetID), \(event.targetVersion.flatMap { Int32(exactly: $0) }),
                    \(event.requestID), \(event.idempotencyKey), \(event.detailsJSON))
            """)
    }

    func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws {
        try await Self.completeIdempotencyKey(key, with: response, expiresAt: expiresAt, secrets: secrets) { try await self.execute($0) }
    }

    func publish(_ change: MetadataChange) async throws {
        guard let payload = MetadataNotification(change)?.json else { return }
        try await execute("SELECT pg_notify(\(PostgresMetadataStore.notificationChannel), \(payload))")
    }

    /// Marks the claimed record completed with `response` (its body sealed); the same statement
    /// serves `write` and the store's own `completeIdempotencyKey`.
    static func completeIdempotencyKey(
        _ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date, secrets: SecretBox,
        run: (PostgresQuery) async throws -> [PostgresRow]
    ) async throws {
        guard let status = Int32(exactly: response.status) else { throw MetadataError.invalid("status \(response.status)") }
        let headers = try PostgresRecordCodec.headersJSON(response.headers)
        let body = Data(try secrets.seal(response.body, kid: PostgresRecordCodec.idempotencyAssociatedData(key)))
        let updated = try await run(
            """
            UPDATE idempotency_records SET state = 'completed', response_status = \(status), response_headers = \(headers),
                response_body = \(body), expires_at = \(expiresAt.postgres)
            WHERE scope = \(key.scope) AND key = \(key.key) AND state = 'in_progress'
            RETURNING key
            """)
        // No claim to complete (released, purged or already completed): storing the response
        // now could replay it for a request that never ran with it.
        guard !updated.isEmpty else { throw MetadataError.notFound("no claim of idempotency key \(key.key)") }
    }

    // MARK: Statements

    /// Runs one statement of the transaction; errors become `MetadataError`.
    @discardableResult
    private func execute(_ query: PostgresQuery) async throws -> [PostgresRow] {
        guard isOpen.withLock({ $0 }) else {
            throw MetadataError.invalid("a metadata transaction was used after its write { } returned")
        }
        // A write past its deadline is cancelled: stop here so it rolls back.
        try Task.checkCancellation()
        do {
            return try await connection.rows(query, logger: logger)
        } catch {
            throw PostgresErrors.map(error)
        }
    }
}
