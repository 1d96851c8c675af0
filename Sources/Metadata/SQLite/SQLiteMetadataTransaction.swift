import Foundation
import SQLiteNIO
import Synchronization
import Tenancy

/// One `SQLiteMetadataStore.write`: the store's connection while it holds the store's gate and
/// an open `BEGIN IMMEDIATE`. The store closes it before COMMIT or ROLLBACK; from then on every
/// call throws, so a transaction kept past its closure cannot write outside it.
final class SQLiteMetadataTransaction: MetadataTransaction {
    private struct State {
        var isOpen = true
        /// Published changes, broadcast by the store after COMMIT.
        var changes: [MetadataChange] = []
    }

    private let connection: SQLiteConnection
    private let secrets: SecretBox
    private let state = Mutex(State())

    init(connection: SQLiteConnection, secrets: SecretBox) {
        self.connection = connection
        self.secrets = secrets
    }

    /// Ends the transaction's use and hands over what it published.
    func close() -> [MetadataChange] {
        state.withLock { state in
            state.isOpen = false
            return state.changes
        }
    }

    // MARK: Tenants

    func lockTenant(_ id: TenantID) async throws -> Tenant? {
        // BEGIN IMMEDIATE already holds the database's write lock: nothing else changes the row.
        guard MetadataValidation.isPlausibleIdentifier(id.rawValue) else { return nil }
        return try await run { connection in
            try await connection.query("SELECT \(SQLiteRecords.tenantColumns) FROM tenants WHERE id = ?", [.text(id.rawValue)])
                .first.map(SQLiteRecords.tenant)
        }
    }

    func insertTenant(_ tenant: Tenant) async throws {
        try MetadataValidation.checkSlug(tenant.slug)
        try MetadataValidation.checkDisplayName(tenant.displayName)
        try MetadataValidation.checkPlan(tenant.plan)
        try await run { connection in
            // Checked first (the write lock is held) so the conflict names the slug, and no
            // failed statement is left in the transaction.
            guard try await connection.query("SELECT 1 FROM tenants WHERE slug = ?", [.text(tenant.slug)]).isEmpty else {
                throw MetadataError.conflict("slug '\(tenant.slug)' is taken")
            }
            _ = try await connection.query(
                """
                INSERT INTO tenants (id, slug, display_name, plan, status, created_at, updated_at,
                                     suspended_at, suspension_reason, deleted_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(tenant.id.rawValue), .text(tenant.slug), .text(tenant.displayName), .text(tenant.plan),
                    .text(tenant.status.rawValue), .time(tenant.createdAt), .time(tenant.updatedAt),
                    .optionalTime(tenant.suspendedAt), .optionalText(tenant.suspensionReason), .optionalTime(tenant.deletedAt),
                ])
            try await SQLiteMetadataStore.insertDefaultQuotas(tenant: tenant.id, at: tenant.createdAt, on: connection)
        }
    }

    func updateTenant(_ tenant: Tenant) async throws {
        try MetadataValidation.checkDisplayName(tenant.displayName)
        try MetadataValidation.checkPlan(tenant.plan)
        try await run { connection in
            let updated = try await connection.query(
                """
                UPDATE tenants SET display_name = ?, plan = ?, status = ?, updated_at = ?,
                                   suspended_at = ?, suspension_reason = ?, deleted_at = ?
                WHERE id = ? RETURNING id
                """,
                [
                    .text(tenant.displayName), .text(tenant.plan), .text(tenant.status.rawValue), .time(tenant.updatedAt),
                    .optionalTime(tenant.suspendedAt), .optionalText(tenant.suspensionReason), .optionalTime(tenant.deletedAt),
                    .text(tenant.id.rawValue),
                ])
            guard !updated.isEmpty else { throw MetadataError.notFound("tenant \(tenant.id)") }
        }
    }

    // MARK: Signing keys

    func signingKey(kid: String) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        let secrets = self.secrets
        return try await run { connection in
            try await connection.query("SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE kid = ?", [.text(kid)])
                .first.map { try SQLiteRecords.signingKey($0, secrets: secrets) }
        }
    }

    func countActiveSigningKeys(tenant: TenantID) async throws -> Int {
        try await run { connection in
            let row = try await connection.query(
                "SELECT count(*) AS active FROM signing_keys WHERE tenant_id = ? AND status = 'active'", [.text(tenant.rawValue)]
            ).first
            return Int(try row?.requiredInteger("active") ?? 0)
        }
    }

    func insertSigningKey(_ key: SigningKey) async throws {
        try MetadataValidation.checkKeyMaterial(key.material, for: key.algorithm)
        let sealed: SQLiteData
        let publicKey: SQLiteData
        switch key.material {
        case .hmacSecret(let secret):
            sealed = .bytes(try secrets.seal(secret, kid: key.kid))
            publicKey = .null
        case .publicKeyPEM(let text):
            sealed = .null
            publicKey = .text(text)
        }
        try await run { connection in
            _ = try await connection.query(
                """
                INSERT INTO signing_keys (kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status,
                                          created_at, revoked_at, label, public_key_jwk)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(key.kid), .text(key.tenant.rawValue), .text(key.algorithm.rawValue), sealed, publicKey,
                    .text(key.status.rawValue), .time(key.createdAt), .optionalTime(key.revokedAt),
                    .optionalText(key.label), .optionalText(key.publicKeyJWK),
                ])
        }
    }

    func revokeSigningKey(kid: String, at: Date) async throws -> SigningKey? {
        guard MetadataValidation.isPlausibleIdentifier(kid) else { return nil }
        let secrets = self.secrets
        return try await run { connection in
            // Only an active key changes, so a second revocation keeps the first time.
            _ = try await connection.query(
                "UPDATE signing_keys SET status = 'revoked', revoked_at = ? WHERE kid = ? AND status = 'active'",
                [.time(at), .text(kid)])
            return try await connection.query("SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE kid = ?", [.text(kid)])
                .first.map { try SQLiteRecords.signingKey($0, secrets: secrets) }
        }
    }

    // MARK: Quotas

    func quotas(tenant: TenantID) async throws -> StoredQuotas? {
        try await run { connection in
            try await connection.query("SELECT \(SQLiteRecords.quotaColumns) FROM tenant_quotas WHERE tenant_id = ?", [.text(tenant.rawValue)])
                .first.map { try SQLiteRecords.storedQuotas($0) }
        }
    }

    func saveQuotas(_ quotas: StoredQuotas) async throws {
        let custom = quotas.custom
        try await run { connection in
            _ = try await connection.query(
                """
                INSERT INTO tenant_quotas (tenant_id, custom_max_connections, custom_max_operations_per_second,
                    custom_max_storage_bytes, custom_max_maps, custom_max_message_bytes, custom_max_live_subscriptions,
                    version, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (tenant_id) DO UPDATE SET
                    custom_max_connections = excluded.custom_max_connections,
                    custom_max_operations_per_second = excluded.custom_max_operations_per_second,
                    custom_max_storage_bytes = excluded.custom_max_storage_bytes,
                    custom_max_maps = excluded.custom_max_maps,
                    custom_max_message_bytes = excluded.custom_max_message_bytes,
                    custom_max_live_subscriptions = excluded.custom_max_live_subscriptions,
                    version = excluded.version,
                    updated_at = excluded.updated_at
                """,
                [
                    .text(quotas.tenant.rawValue),
                    .optionalInteger(custom?.maxConnections), .optionalInteger(custom?.maxOperationsPerSecond),
                    .optionalInteger(custom?.maxStorageBytes), .optionalInteger(custom?.maxMaps),
                    .optionalInteger(custom?.maxMessageBytes), .optionalInteger(custom?.maxLiveSubscriptions),
                    .integer(SQLiteInt64(quotas.version)), .time(quotas.updatedAt),
                ])
        }
    }

    // MARK: Schemas

    func schemaHead(tenant: TenantID, map: String) async throws -> MapSchemaHead? {
        try await run { connection in
            guard
                let row = try await connection.query(
                    "SELECT current_version, latest_version FROM map_schemas WHERE tenant_id = ? AND map = ?",
                    [.text(tenant.rawValue), .text(map)]
                ).first
            else { return nil }
            return MapSchemaHead(
                current: row.column("current_version")?.integer.map { Int($0) },
                latest: Int(try row.requiredInteger("latest_version")))
        }
    }

    func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion? {
        try await run { connection in
            try await SQLiteMetadataStore.schemaVersion(tenant: tenant, map: map, version: version, on: connection)
        }
    }

    func insertSchemaVersion(_ version: MapSchemaVersion) async throws {
        try await run { connection in
            // The head first: the version row refers to it.
            _ = try await connection.query(
                """
                INSERT INTO map_schemas (tenant_id, map, current_version, latest_version) VALUES (?, ?, ?, ?)
                ON CONFLICT (tenant_id, map) DO UPDATE SET
                    current_version = excluded.current_version,
                    latest_version = max(latest_version, excluded.latest_version)
                """,
                [.text(version.tenant.rawValue), .text(version.map), .integer(SQLiteInt64(version.version)), .integer(SQLiteInt64(version.version))])
            _ = try await connection.query(
                """
                INSERT INTO map_schema_versions (tenant_id, map, version, enforcement, schema_json, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(version.tenant.rawValue), .text(version.map), .integer(SQLiteInt64(version.version)),
                    .text(version.enforcement.rawValue), .text(version.schemaJSON), .time(version.createdAt),
                ])
        }
    }

    func clearCurrentSchema(tenant: TenantID, map: String) async throws {
        try await run { connection in
            _ = try await connection.query(
                "UPDATE map_schemas SET current_version = NULL WHERE tenant_id = ? AND map = ?", [.text(tenant.rawValue), .text(map)])
        }
    }

    // MARK: Admin tokens

    func insertAdminToken(_ token: AdminTokenRecord) async throws {
        try await run { connection in
            _ = try await connection.query(
                """
                INSERT INTO admin_tokens (id, name, scopes, value_hash, prefix, created_at, created_by,
                                          expires_at, last_used_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(token.id), .text(token.name), .text(token.scopes.joined(separator: " ")), .bytes(token.valueHash),
                    .text(token.prefix), .time(token.createdAt), .text(token.createdBy), .optionalTime(token.expiresAt),
                    .optionalTime(token.lastUsedAt), .optionalTime(token.revokedAt),
                ])
        }
    }

    func revokeAdminToken(id: String, at: Date) async throws -> AdminTokenRecord? {
        try await run { connection in
            try await connection.query(
                "UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING \(SQLiteRecords.adminTokenColumns)",
                [.time(at), .text(id)]
            ).first.map(SQLiteRecords.adminToken)
        }
    }

    // MARK: Audit, idempotency, notifications

    func appendAudit(_ event: AuditEvent) async throws {
        try await run { connection in
            _ = try await connection.query(
                """
                INSERT INTO audit_events (id, time, actor, action, tenant_id, target_type, target_id, target_version,
                                          request_id, idempotency_key, details)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(event.id), .time(event.time), .text(event.actor), .text(event.action),
                    .optionalText(event.tenant?.rawValue), .text(event.targetType), .text(event.targetID),
                    .optionalInteger(event.targetVersion.map(Int64.init)), .text(event.requestID),
                    .optionalText(event.idempotencyKey), .text(event.detailsJSON),
                ])
        }
    }

    func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws {
        let binds = try SQLiteMetadataStore.completionBinds(key, response, expiresAt: expiresAt, secrets: secrets)
        try await run { connection in
            try await SQLiteMetadataStore.completeIdempotencyKey(key, binds: binds, on: connection)
        }
    }

    func publish(_ change: MetadataChange) async throws {
        try state.withLock { state throws(MetadataError) in
            guard state.isOpen else { throw Self.ended }
            state.changes.append(change)
        }
    }

    // MARK: Internals

    private static let ended = MetadataError.invalid("the metadata transaction has ended: use it only inside its write closure")

    /// Runs `body` on the connection if the transaction is still open, mapping SQLite errors.
    private func run<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        guard state.withLock({ $0.isOpen }) else { throw Self.ended }
        do {
            return try await body(connection)
        } catch {
            throw SQLiteErrors.map(error)
        }
    }
}
