import Foundation
import SQLiteNIO
import Tenancy

/// The control plane's reads and writes on the embedded store. A `write` holds the store's
/// gate for its whole closure, so it must use only the transaction it is given: calling the
/// store itself from inside throws (see `checkUsable`).
extension SQLiteMetadataStore: ControlPlaneStore {
    /// Idempotency records are kept this long after their claim.
    static let idempotencyLifetime: TimeInterval = 24 * 60 * 60

    // MARK: Transactions

    public func write<Result: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> Result
    ) async throws -> Result {
        try checkUsable()
        let (result, changes) = try await gate.run { () async throws -> (Result, [MetadataChange]) in
            do {
                _ = try await connection.query("BEGIN IMMEDIATE")
            } catch {
                throw SQLiteErrors.map(error)
            }
            let transaction = SQLiteMetadataTransaction(connection: connection, secrets: secrets)
            let result: Result
            do {
                result = try await Self.$writing.withValue(ObjectIdentifier(self)) { try await body(transaction) }
            } catch {
                _ = transaction.close()
                _ = try? await connection.query("ROLLBACK")
                throw error  // the body's own error, as is
            }
            let changes = transaction.close()
            do {
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw SQLiteErrors.map(error)
            }
            return (result, changes)
        }
        for change in changes { broadcaster.publish(change) }
        return result
    }

    // MARK: Tenants and keys

    public func tenants(statuses: Set<Tenant.Status>, plan: String?, after: ListPosition?, limit: Int) async throws -> Page<Tenant> {
        try SQLiteRecords.checkLimit(limit)
        guard !statuses.isEmpty else { return Page(items: [], next: nil) }
        let ordered = statuses.map(\.rawValue).sorted()
        var conditions = ["status IN (\(Array(repeating: "?", count: ordered.count).joined(separator: ", ")))"]
        var binds: [SQLiteData] = ordered.map { .text($0) }
        if let plan {
            conditions.append("plan = ?")
            binds.append(.text(plan))
        }
        if let after {
            conditions.append("(created_at > ? OR (created_at = ? AND id > ?))")
            binds += [.time(after.time), .time(after.time), .text(after.id)]
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let sql = """
            SELECT \(SQLiteRecords.tenantColumns) FROM tenants WHERE \(conditions.joined(separator: " AND "))
            ORDER BY created_at, id LIMIT ?
            """
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try SQLiteRecords.page(rows, limit: limit, decode: SQLiteRecords.tenant) {
            ListPosition(time: $0.createdAt, id: $0.id.rawValue)
        }
    }

    public func signingKeys(tenant: TenantID, status: SigningKey.Status?, after: ListPosition?, limit: Int) async throws -> Page<SigningKey> {
        try SQLiteRecords.checkLimit(limit)
        var conditions = ["tenant_id = ?"]
        var binds: [SQLiteData] = [.text(tenant.rawValue)]
        if let status {
            conditions.append("status = ?")
            binds.append(.text(status.rawValue))
        }
        if let after {
            conditions.append("(created_at > ? OR (created_at = ? AND kid > ?))")
            binds += [.time(after.time), .time(after.time), .text(after.id)]
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let sql = """
            SELECT \(SQLiteRecords.keyColumns) FROM signing_keys WHERE \(conditions.joined(separator: " AND "))
            ORDER BY created_at, kid LIMIT ?
            """
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        let secrets = self.secrets
        return try SQLiteRecords.page(rows, limit: limit, decode: { try SQLiteRecords.signingKey($0, secrets: secrets) }) {
            ListPosition(time: $0.createdAt, id: $0.kid)
        }
    }

    public func quotas(tenant: TenantID) async throws -> TenantQuotas? {
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { return nil }
        let row = try await exclusive(.none) { connection in
            // One statement: the tenant's plan and its quotas from the same snapshot.
            try await connection.query(
                """
                SELECT t.id AS id, t.slug AS slug, t.display_name AS display_name, t.plan AS plan, t.status AS status,
                       t.created_at AS created_at, t.updated_at AS updated_at, t.suspended_at AS suspended_at,
                       t.suspension_reason AS suspension_reason, t.deleted_at AS deleted_at,
                       q.tenant_id AS tenant_id, q.custom_max_connections AS custom_max_connections,
                       q.custom_max_operations_per_second AS custom_max_operations_per_second,
                       q.custom_max_storage_bytes AS custom_max_storage_bytes, q.custom_max_maps AS custom_max_maps,
                       q.custom_max_message_bytes AS custom_max_message_bytes,
                       q.custom_max_live_subscriptions AS custom_max_live_subscriptions,
                       q.version AS version, q.updated_at AS quotas_updated_at
                FROM tenants t LEFT JOIN tenant_quotas q ON q.tenant_id = t.id
                WHERE t.id = ?
                """,
                [.text(tenant.rawValue)]
            ).first
        }
        guard let row else { return nil }
        let decoded = try SQLiteRecords.tenant(row)
        let stored: StoredQuotas
        if row.column("version")?.integer != nil {
            stored = try SQLiteRecords.storedQuotas(row, updatedAtColumn: "quotas_updated_at")
        } else {
            // Every tenant has a row (creation and migration 0003 insert it); read a missing
            // one as what it would hold.
            stored = StoredQuotas(tenant: decoded.id, custom: nil, version: 1, updatedAt: decoded.createdAt)
        }
        return TenantQuotas(tenant: decoded, stored: stored)
    }

    // MARK: Schemas

    public func currentSchema(tenant: TenantID, map: String) async throws -> MapSchemaVersion? {
        try await exclusive(.none) { connection in
            try await connection.query(
                """
                SELECT \(SQLiteRecords.schemaVersionColumns("v")) FROM map_schemas s
                JOIN map_schema_versions v ON v.tenant_id = s.tenant_id AND v.map = s.map AND v.version = s.current_version
                WHERE s.tenant_id = ? AND s.map = ?
                """,
                [.text(tenant.rawValue), .text(map)]
            ).first.map(SQLiteRecords.schemaVersion)
        }
    }

    public func recordMapKind(tenant: TenantID, map: String, kind: MapKind) async throws -> MapKind {
        let text = try await exclusive { connection in
            try await connection.query(
                "INSERT OR IGNORE INTO map_kinds (tenant_id, map, kind) VALUES (?, ?, ?)", [.text(tenant.rawValue), .text(map), .text(kind.rawValue)])
            return try await connection.query("SELECT kind FROM map_kinds WHERE tenant_id = ? AND map = ?", [.text(tenant.rawValue), .text(map)])
                .first?.column("kind")?.string
        }
        guard let text, let recorded = MapKind(rawValue: text) else { throw MetadataError.invalid("no map kind recorded for map '\(map)'") }
        return recorded
    }

    public func recordedMaps(tenant: TenantID) async throws -> [String] {
        try await exclusive(.none) { connection in
            try await connection.query("SELECT map FROM map_kinds WHERE tenant_id = ?", [.text(tenant.rawValue)]).compactMap { $0.column("map")?.string }
        }
    }

    public func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion? {
        try await exclusive(.none) { connection in
            try await Self.schemaVersion(tenant: tenant, map: map, version: version, on: connection)
        }
    }

    public func currentSchemas(tenant: TenantID, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion> {
        try SQLiteRecords.checkLimit(limit)
        var binds: [SQLiteData] = [.text(tenant.rawValue)]
        var afterCondition = ""
        if let after {
            afterCondition = "AND s.map > ?"
            binds.append(.text(after.id))
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let sql = """
            SELECT \(SQLiteRecords.schemaVersionColumns("v")) FROM map_schemas s
            JOIN map_schema_versions v ON v.tenant_id = s.tenant_id AND v.map = s.map AND v.version = s.current_version
            WHERE s.tenant_id = ? \(afterCondition)
            ORDER BY s.map LIMIT ?
            """
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try SQLiteRecords.page(rows, limit: limit, decode: SQLiteRecords.schemaVersion) {
            ListPosition(time: $0.createdAt, id: $0.map)
        }
    }

    public func schemaVersions(tenant: TenantID, map: String, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion> {
        try SQLiteRecords.checkLimit(limit)
        var binds: [SQLiteData] = [.text(tenant.rawValue), .text(map)]
        var afterCondition = ""
        if let after {
            guard let version = Int(after.id) else { throw MetadataError.invalid("not a schema list position: \(after.id)") }
            afterCondition = "AND version < ?"
            binds.append(.integer(SQLiteInt64(version)))
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let sql = """
            SELECT \(SQLiteRecords.schemaVersionColumns("v")) FROM map_schema_versions v
            WHERE tenant_id = ? AND map = ? \(afterCondition)
            ORDER BY version DESC LIMIT ?
            """
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try SQLiteRecords.page(rows, limit: limit, decode: SQLiteRecords.schemaVersion) {
            ListPosition(time: $0.createdAt, id: String($0.version))
        }
    }

    static func schemaVersion(tenant: TenantID, map: String, version: Int, on connection: SQLiteConnection) async throws -> MapSchemaVersion? {
        try await connection.query(
            "SELECT \(SQLiteRecords.schemaVersionColumns("v")) FROM map_schema_versions v WHERE tenant_id = ? AND map = ? AND version = ?",
            [.text(tenant.rawValue), .text(map), .integer(SQLiteInt64(version))]
        ).first.map(SQLiteRecords.schemaVersion)
    }

    // MARK: Audit

    public func auditEvents(_ filter: AuditFilter, after: ListPosition?, limit: Int) async throws -> Page<AuditEvent> {
        try SQLiteRecords.checkLimit(limit)
        var conditions: [String] = []
        var binds: [SQLiteData] = []
        if let tenant = filter.tenant {
            conditions.append("tenant_id = ?")
            binds.append(.text(tenant.rawValue))
        }
        if let actor = filter.actor {
            conditions.append("actor = ?")
            binds.append(.text(actor))
        }
        if let action = filter.action {
            conditions.append("action = ?")
            binds.append(.text(action))
        }
        if let from = filter.from {
            conditions.append("time >= ?")
            binds.append(.time(from))
        }
        if let to = filter.to {
            conditions.append("time < ?")
            binds.append(.time(to))
        }
        if let after {
            conditions.append("(time < ? OR (time = ? AND id < ?))")
            binds += [.time(after.time), .time(after.time), .text(after.id)]
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(SQLiteRecords.auditColumns) FROM audit_events \(whereClause) ORDER BY time DESC, id DESC LIMIT ?"
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try SQLiteRecords.page(rows, limit: limit, decode: SQLiteRecords.auditEvent) {
            ListPosition(time: $0.time, id: $0.id)
        }
    }

    // MARK: Admin tokens

    public func adminToken(id: String) async throws -> AdminTokenRecord? {
        guard MetadataValidation.isPlausibleIdentifier(id) else { return nil }
        return try await exclusive(.none) { connection in
            try await connection.query("SELECT \(SQLiteRecords.adminTokenColumns) FROM admin_tokens WHERE id = ?", [.text(id)])
                .first.map(SQLiteRecords.adminToken)
        }
    }

    public func adminToken(valueHash: [UInt8]) async throws -> AdminTokenRecord? {
        try await exclusive(.none) { connection in
            try await connection.query("SELECT \(SQLiteRecords.adminTokenColumns) FROM admin_tokens WHERE value_hash = ?", [.bytes(valueHash)])
                .first.map(SQLiteRecords.adminToken)
        }
    }

    public func adminTokens(status: AdminTokenRecord.Status?, now: Date, after: ListPosition?, limit: Int) async throws -> Page<AdminTokenRecord> {
        try SQLiteRecords.checkLimit(limit)
        var conditions: [String] = []
        var binds: [SQLiteData] = []
        switch status {
        case nil: break
        case .revoked?:
            conditions.append("revoked_at IS NOT NULL")
        case .expired?:
            conditions.append("revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?")
            binds.append(.time(now))
        case .active?:
            conditions.append("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)")
            binds.append(.time(now))
        }
        if let after {
            conditions.append("(created_at > ? OR (created_at = ? AND id > ?))")
            binds += [.time(after.time), .time(after.time), .text(after.id)]
        }
        binds.append(.integer(SQLiteInt64(limit) + 1))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(SQLiteRecords.adminTokenColumns) FROM admin_tokens \(whereClause) ORDER BY created_at, id LIMIT ?"
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try SQLiteRecords.page(rows, limit: limit, decode: SQLiteRecords.adminToken) {
            ListPosition(time: $0.createdAt, id: $0.id)
        }
    }

    public func touchAdminToken(id: String, at: Date) async throws {
        try await exclusive(.none) { connection in
            _ = try await connection.query("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?", [.time(at), .text(id)])
        }
    }

    // MARK: Usage

    public func recordUsage(_ flush: UsageFlush) async throws {
        try await exclusive { connection in
            let fresh = try await connection.query(
                "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (?, ?) ON CONFLICT (flush_id) DO NOTHING RETURNING flush_id",
                [.text(flush.id), .integer(SQLiteTime.now())])
            guard !fresh.isEmpty else { return }  // applied before: a retried flush counts once
            for delta in flush.deltas {
                _ = try await connection.query(
                    """
                    INSERT INTO usage_hours (\(SQLiteRecords.usageColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, period_start) DO UPDATE SET
                        operations = operations + excluded.operations,
                        bytes_in = bytes_in + excluded.bytes_in,
                        bytes_out = bytes_out + excluded.bytes_out,
                        connection_seconds = connection_seconds + excluded.connection_seconds,
                        peak_connections = max(peak_connections, excluded.peak_connections),
                        storage_bytes = excluded.storage_bytes
                    """,
                    [
                        .text(delta.tenant.rawValue), .time(delta.periodStart),
                        .integer(SQLiteInt64(delta.operations)), .integer(SQLiteInt64(delta.bytesIn)),
                        .integer(SQLiteInt64(delta.bytesOut)), .integer(SQLiteInt64(delta.connectionSeconds)),
                        .integer(SQLiteInt64(delta.peakConnections)), .integer(SQLiteInt64(delta.storageBytes)),
                    ])
            }
        }
    }

    public func usageHours(tenant: TenantID, from: Date, to: Date) async throws -> [UsageHour] {
        let rows = try await exclusive(.none) { connection in
            try await connection.query(
                """
                SELECT \(SQLiteRecords.usageColumns) FROM usage_hours
                WHERE tenant_id = ? AND period_start >= ? AND period_start < ? ORDER BY period_start
                """,
                [.text(tenant.rawValue), .time(from), .time(to)])
        }
        return try rows.map(SQLiteRecords.usageHour)
    }

    public func usageHours(from: Date, to: Date, after: (periodStart: Date, tenant: TenantID)?, limit: Int) async throws -> [UsageHour] {
        try SQLiteRecords.checkLimit(limit)
        var binds: [SQLiteData] = [.time(from), .time(to)]
        var afterCondition = ""
        if let after {
            afterCondition = "AND (period_start > ? OR (period_start = ? AND tenant_id > ?))"
            binds += [.time(after.periodStart), .time(after.periodStart), .text(after.tenant.rawValue)]
        }
        binds.append(.integer(SQLiteInt64(limit)))
        let sql = """
            SELECT \(SQLiteRecords.usageColumns) FROM usage_hours
            WHERE period_start >= ? AND period_start < ? \(afterCondition)
            ORDER BY period_start, tenant_id LIMIT ?
            """
        let rows = try await exclusive(.none) { [binds] connection in try await connection.query(sql, binds) }
        return try rows.map(SQLiteRecords.usageHour)
    }

    // MARK: Idempotency

    public func claimIdempotencyKey(
        _ key: IdempotencyKey, for request: IdempotentRequest, now: Date, staleAfter: TimeInterval
    ) async throws -> IdempotencyClaim {
        let nowMicros = SQLiteTime.micros(now)
        let staleBefore = SQLiteTime.micros(now.addingTimeInterval(-staleAfter))
        let claimBinds: [SQLiteData] = [
            .text(request.method), .text(request.path), .bytes(request.bodyHash), .integer(nowMicros),
            .time(now.addingTimeInterval(Self.idempotencyLifetime)), .text(key.scope), .text(key.key),
        ]
        // The existing record when it decides the answer; nil once this request holds the claim.
        let existing = try await exclusive { connection -> SQLiteRow? in
            let found = try await connection.query(
                """
                SELECT state, method, path, body_hash, response_status, response_headers, response_body, created_at, expires_at
                FROM idempotency_records WHERE scope = ? AND key = ?
                """,
                [.text(key.scope), .text(key.key)]
            ).first
            guard let found else {
                _ = try await connection.query(
                    """
                    INSERT INTO idempotency_records (method, path, body_hash, state, created_at, expires_at, scope, key)
                    VALUES (?, ?, ?, 'in_progress', ?, ?, ?, ?)
                    """,
                    claimBinds)
                return nil
            }
            let expired = try found.requiredInteger("expires_at") <= nowMicros
            let stale = try found.requiredText("state") == "in_progress" && found.requiredInteger("created_at") < staleBefore
            guard expired || stale else { return found }
            // Taken over: the record starts again as this request's claim.
            _ = try await connection.query(
                """
                UPDATE idempotency_records SET method = ?, path = ?, body_hash = ?, state = 'in_progress',
                    response_status = NULL, response_headers = NULL, response_body = NULL, created_at = ?, expires_at = ?
                WHERE scope = ? AND key = ?
                """,
                claimBinds)
            return nil
        }
        guard let existing else { return .claimed }
        switch try existing.requiredText("state") {
        case "in_progress":
            return .inProgress
        case "completed":
            let sameRequest = try existing.requiredText("method") == request.method
                && existing.requiredText("path") == request.path
                && existing.requiredBytes("body_hash") == request.bodyHash
            guard sameRequest else { return .mismatch }
            return .completed(try storedResponse(existing, key: key))
        case let state:
            throw MetadataError.unavailable("idempotency record has unknown state '\(state)'")
        }
    }

    public func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws {
        let binds = try Self.completionBinds(key, response, expiresAt: expiresAt, secrets: secrets)
        try await exclusive(.none) { connection in
            try await Self.completeIdempotencyKey(key, binds: binds, on: connection)
        }
    }

    public func releaseIdempotencyKey(_ key: IdempotencyKey) async throws {
        try await exclusive(.none) { connection in
            // Only a claim: a stored response stays until it expires.
            _ = try await connection.query(
                "DELETE FROM idempotency_records WHERE scope = ? AND key = ? AND state = 'in_progress'",
                [.text(key.scope), .text(key.key)])
        }
    }

    @discardableResult
    public func purgeIdempotencyKeys(expiredBefore: Date) async throws -> Int {
        try await exclusive(.none) { connection in
            try await connection.query(
                "DELETE FROM idempotency_records WHERE expires_at <= ? RETURNING 1", [.time(expiredBefore)]
            ).count
        }
    }

    /// What completing a claim writes, the body sealed. The associated data names the record,
    /// so a body cannot be moved to another record, nor a key secret passed off as a body.
    static func completionBinds(
        _ key: IdempotencyKey, _ response: StoredResponse, expiresAt: Date, secrets: SecretBox
    ) throws -> [SQLiteData] {
        let headers: String
        do {
            headers = String(decoding: try JSONEncoder().encode(response.headers), as: UTF8.self)
        } catch {
            throw MetadataError.invalid("response headers cannot be stored: \(error)")
        }
        let sealed = try secrets.seal(response.body, kid: sealingContext(key))
        return [
            .integer(SQLiteInt64(response.status)), .text(headers), .bytes(sealed), .time(expiresAt),
            .text(key.scope), .text(key.key),
        ]
    }

    static func completeIdempotencyKey(_ key: IdempotencyKey, binds: [SQLiteData], on connection: SQLiteConnection) async throws {
        let completed = try await connection.query(
            """
            UPDATE idempotency_records SET state = 'completed', response_status = ?, response_headers = ?,
                response_body = ?, expires_at = ?
            WHERE scope = ? AND key = ? AND state = 'in_progress' RETURNING 1
            """,
            binds)
        // No claim to complete (released, purged, or already completed): storing the response
        // now could replay it for a request that never ran with it.
        guard !completed.isEmpty else { throw MetadataError.notFound("no claim of idempotency key \(key.key)") }
    }

    private static func sealingContext(_ key: IdempotencyKey) -> String {
        "idempotency:" + key.scope + ":" + key.key
    }

    private func storedResponse(_ row: SQLiteRow, key: IdempotencyKey) throws -> StoredResponse {
        let headersText = try row.requiredText("response_headers")
        let headers: [StoredHeader]
        do {
            headers = try JSONDecoder().decode([StoredHeader].self, from: Data(headersText.utf8))
        } catch {
            throw MetadataError.unavailable("stored response headers of idempotency key \(key.key) are unreadable")
        }
        let body = try secrets.open(try row.requiredBytes("response_body"), kid: Self.sealingContext(key))
        return StoredResponse(status: Int(try row.requiredInteger("response_status")), headers: headers, body: body)
    }
}
