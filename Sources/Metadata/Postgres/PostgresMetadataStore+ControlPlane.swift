import Foundation
import Logging
import PostgresNIO
import Tenancy

/// What the data plane reads and writes (`MetadataStore`): quotas, the schema in force, usage.
extension PostgresMetadataStore {
    public func quotas(tenant: TenantID) async throws -> TenantQuotas? {
        guard MetadataValidation.isPlausibleIdentifier(tenant.rawValue) else { return nil }
        let rows = try await read(
            """
            SELECT \(unescaped: Self.prefixed(PostgresRecordCodec.tenantColumns, "t")), q.version, q.updated_at,
                   q.custom_max_connections, q.custom_max_operations_per_second, q.custom_max_storage_bytes, q.custom_max_maps,
                   q.custom_max_message_bytes, q.custom_max_live_subscriptions
            FROM tenants t LEFT JOIN tenant_quotas q ON q.tenant_id = t.id
            WHERE t.id = \(tenant.rawValue)
            """)
        guard let row = rows.first else { return nil }
        let found = try PostgresRecordCodec.tenant(row)
        let columns = row.makeRandomAccess()
        let version = try columns[10].decode(Int64?.self)
        let updatedAt = try columns[11].decode(PostgresTimestamp?.self)
        // The table's check constraint keeps the six custom limits all set or all NULL.
        let custom = try (12...17).compactMap { try columns[$0].decode(Int64?.self) }
        var limits: QuotaLimits?
        if custom.count == 6 {
            limits = QuotaLimits(
                maxConnections: custom[0], maxOperationsPerSecond: custom[1], maxStorageBytes: custom[2], maxMaps: custom[3],
                maxMessageBytes: custom[4], maxLiveSubscriptions: custom[5])
        }
        // Every tenant has a quotas row from its creation; if one is missing, it follows its plan.
        let stored = StoredQuotas(tenant: found.id, custom: limits, version: version ?? 1, updatedAt: updatedAt?.date ?? found.createdAt)
        return TenantQuotas(tenant: found, stored: stored)
    }

    public func currentSchema(tenant: TenantID, map: String) async throws -> MapSchemaVersion? {
        try await read(
            """
            SELECT \(unescaped: Self.prefixed(PostgresRecordCodec.schemaColumns, "v"))
            FROM map_schemas s JOIN map_schema_versions v
              ON v.tenant_id = s.tenant_id AND v.map = s.map AND v.version = s.current_version
            WHERE s.tenant_id = \(tenant.rawValue) AND s.map = \(map)
            """
        ).first.map(PostgresRecordCodec.schemaVersion)
    }

    public func recordMapKind(tenant: TenantID, map: String, kind: MapKind) async throws -> MapKind {
        // Two statements: under READ COMMITTED the SELECT sees the row of a racing insert,
        // which a single statement's snapshot might not.
        _ = try await read("INSERT INTO map_kinds (tenant_id, map, kind) VALUES (\(tenant.rawValue), \(map), \(kind.rawValue)) ON CONFLICT DO NOTHING")
        let rows = try await read("SELECT kind FROM map_kinds WHERE tenant_id = \(tenant.rawValue) AND map = \(map)")
        guard let text = try rows.first?.decode(String.self), let recorded = MapKind(rawValue: text) else {
            throw MetadataError.invalid("no map kind recorded for map '\(map)'")
        }
        return recorded
    }

    public func recordedMaps(tenant: TenantID) async throws -> [String] {
        try await read("SELECT map FROM map_kinds WHERE tenant_id = \(tenant.rawValue)").map { try $0.decode(String.self) }
    }

    public func recordUsage(_ flush: UsageFlush) async throws {
        guard MetadataValidation.isPlausibleIdentifier(flush.id) else { throw MetadataError.invalid("usage flush id '\(flush.id)'") }
        // One row per (tenant, hour), in key order: a statement may touch a row once only, and
        // concurrent flushes then lock rows in the same order (no deadlock).
        let rows = Self.merged(flush.deltas)
        try await inTransaction { connection in
            let logger = self.logger
            let first = try await connection.rows(
                "INSERT INTO usage_flushes (flush_id, applied_at) VALUES (\(flush.id), now()) ON CONFLICT DO NOTHING RETURNING flush_id",
                logger: logger)
            guard !first.isEmpty, !rows.isEmpty else { return }  // applied before: counted once
            try await connection.rows(
                """
                INSERT INTO usage_hours AS h (tenant_id, period_start, operations, bytes_in, bytes_out, connection_seconds,
                                              peak_connections, storage_bytes)
                SELECT * FROM unnest(\(rows.map(\.tenant.rawValue)), \(rows.map(\.periodStart.postgres)), \(rows.map(\.operations)),
                                     \(rows.map(\.bytesIn)), \(rows.map(\.bytesOut)), \(rows.map(\.connectionSeconds)),
                                     \(rows.map(\.peakConnections)), \(rows.map(\.storageBytes)))
                ON CONFLICT (tenant_id, period_start) DO UPDATE SET
                    operations = h.operations + EXCLUDED.operations,
                    bytes_in = h.bytes_in + EXCLUDED.bytes_in,
                    bytes_out = h.bytes_out + EXCLUDED.bytes_out,
                    connection_seconds = h.connection_seconds + EXCLUDED.connection_seconds,
                    peak_connections = GREATEST(h.peak_connections, EXCLUDED.peak_connections),
                    storage_bytes = EXCLUDED.storage_bytes
                """, logger: logger)
        }
    }
}

/// The control plane's part of the PostgreSQL store.
///
/// Lists compare and order text keys with `COLLATE "C"` (byte order), whatever the database's
/// collation, so pages are the same as SQLite's. Times are bound and read as whole
/// microseconds (`PostgresTimestamp`), so a page's `next` position matches its row exactly.
extension PostgresMetadataStore: ControlPlaneStore {
    /// How long an idempotency record is kept after its claim.
    static let idempotencyTTL: TimeInterval = 24 * 60 * 60

    public func write<Result: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> Result
    ) async throws -> Result {
        let (logger, secrets) = (self.logger, self.secrets)
        return try await inTransaction { connection in
            let transaction = PostgresMetadataTransaction(connection: connection, logger: logger, secrets: secrets)
            defer { transaction.close() }
            do {
                return try await body(transaction)
            } catch {
                throw TransactionBodyError(error: error)
            }
        }
    }

    // MARK: Reads

    public func tenants(statuses: Set<Tenant.Status>, plan: String?, after: ListPosition?, limit: Int) async throws -> Page<Tenant> {
        try Self.checkLimit(limit)
        guard !statuses.isEmpty else { return Page(items: [], next: nil) }
        let rows = try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.tenantColumns) FROM tenants
            WHERE status = ANY(\(statuses.map(\.rawValue).sorted())::text[])
              AND (\(plan)::text IS NULL OR plan = \(plan)::text)
              AND (\(after?.time.postgres)::timestamptz IS NULL
                   OR (created_at, id COLLATE "C") > (\(after?.time.postgres)::timestamptz, \(after?.id)::text))
            ORDER BY created_at, id COLLATE "C"
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: PostgresRecordCodec.tenant) {
            ListPosition(time: $0.createdAt, id: $0.id.rawValue)
        }
    }

    public func signingKeys(tenant: TenantID, status: SigningKey.Status?, after: ListPosition?, limit: Int) async throws -> Page<SigningKey> {
        try Self.checkLimit(limit)
        let secrets = self.secrets
        let rows = try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.keyColumns) FROM signing_keys
            WHERE tenant_id = \(tenant.rawValue)
              AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)::text)
              AND (\(after?.time.postgres)::timestamptz IS NULL
                   OR (created_at, kid COLLATE "C") > (\(after?.time.postgres)::timestamptz, \(after?.id)::text))
            ORDER BY created_at, kid COLLATE "C"
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: { try PostgresRecordCodec.signingKey($0, secrets: secrets) }) {
            ListPosition(time: $0.createdAt, id: $0.kid)
        }
    }

    public func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion? {
        guard let version = Int32(exactly: version) else { return nil }
        return try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.schemaColumns) FROM map_schema_versions
            WHERE tenant_id = \(tenant.rawValue) AND map = \(map) AND version = \(version)
            """
        ).first.map(PostgresRecordCodec.schemaVersion)
    }

    public func currentSchemas(tenant: TenantID, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion> {
        try Self.checkLimit(limit)
        let rows = try await read(
            """
            SELECT \(unescaped: Self.prefixed(PostgresRecordCodec.schemaColumns, "v"))
            FROM map_schemas s JOIN map_schema_versions v
              ON v.tenant_id = s.tenant_id AND v.map = s.map AND v.version = s.current_version
            WHERE s.tenant_id = \(tenant.rawValue)
              AND (\(after?.id)::text IS NULL OR s.map COLLATE "C" > \(after?.id)::text)
            ORDER BY s.map COLLATE "C"
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: PostgresRecordCodec.schemaVersion) {
            ListPosition(time: $0.createdAt, id: $0.map)
        }
    }

    public func schemaVersions(tenant: TenantID, map: String, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion> {
        try Self.checkLimit(limit)
        var before: Int32?
        if let after {
            guard let number = Int32(after.id) else { throw MetadataError.invalid("'\(after.id)' is not a schema version position") }
            before = number
        }
        let rows = try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.schemaColumns) FROM map_schema_versions
            WHERE tenant_id = \(tenant.rawValue) AND map = \(map)
              AND (\(before)::integer IS NULL OR version < \(before)::integer)
            ORDER BY version DESC
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: PostgresRecordCodec.schemaVersion) {
            ListPosition(time: $0.createdAt, id: String($0.version))
        }
    }

    public func auditEvents(_ filter: AuditFilter, after: ListPosition?, limit: Int) async throws -> Page<AuditEvent> {
        try Self.checkLimit(limit)
        let rows = try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.auditColumns) FROM audit_events
            WHERE (\(filter.tenant?.rawValue)::text IS NULL OR tenant_id = \(filter.tenant?.rawValue)::text)
              AND (\(filter.actor)::text IS NULL OR actor = \(filter.actor)::text)
              AND (\(filter.action)::text IS NULL OR action = \(filter.action)::text)
              AND (\(filter.from.postgres)::timestamptz IS NULL OR time >= \(filter.from.postgres)::timestamptz)
              AND (\(filter.to.postgres)::timestamptz IS NULL OR time < \(filter.to.postgres)::timestamptz)
              AND (\(after?.time.postgres)::timestamptz IS NULL
                   OR (time, id COLLATE "C") < (\(after?.time.postgres)::timestamptz, \(after?.id)::text))
            ORDER BY time DESC, id COLLATE "C" DESC
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: PostgresRecordCodec.auditEvent) {
            ListPosition(time: $0.time, id: $0.id)
        }
    }

    public func adminToken(id: String) async throws -> AdminTokenRecord? {
        guard MetadataValidation.isPlausibleIdentifier(id) else { return nil }
        return try await read("SELECT \(unescaped: PostgresRecordCodec.adminTokenColumns) FROM admin_tokens WHERE id = \(id)")
            .first.map(PostgresRecordCodec.adminToken)
    }

    public func adminToken(valueHash: [UInt8]) async throws -> AdminTokenRecord? {
        try await read(
            "SELECT \(unescaped: PostgresRecordCodec.adminTokenColumns) FROM admin_tokens WHERE value_hash = \(Data(valueHash))"
        ).first.map(PostgresRecordCodec.adminToken)
    }

    public func adminTokens(
        status: AdminTokenRecord.Status?, now: Date, after: ListPosition?, limit: Int
    ) async throws -> Page<AdminTokenRecord> {
        try Self.checkLimit(limit)
        // As `AdminTokenRecord.status(at:)`: revoked wins over expired.
        let rows = try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.adminTokenColumns) FROM admin_tokens
            WHERE CASE \(status?.rawValue)::text
                    WHEN 'revoked' THEN revoked_at IS NOT NULL
                    WHEN 'expired' THEN revoked_at IS NULL AND expires_at <= \(now.postgres)
                    WHEN 'active' THEN revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(now.postgres))
                    ELSE TRUE
                  END
              AND (\(after?.time.postgres)::timestamptz IS NULL
                   OR (created_at, id COLLATE "C") > (\(after?.time.postgres)::timestamptz, \(after?.id)::text))
            ORDER BY created_at, id COLLATE "C"
            LIMIT \(limit + 1)
            """)
        return try PostgresRecordCodec.page(rows, limit: limit, decode: PostgresRecordCodec.adminToken) {
            ListPosition(time: $0.createdAt, id: $0.id)
        }
    }

    public func touchAdminToken(id: String, at: Date) async throws {
        guard MetadataValidation.isPlausibleIdentifier(id) else { return }
        try await read("UPDATE admin_tokens SET last_used_at = \(at.postgres) WHERE id = \(id)")
    }

    // MARK: Usage

    public func usageHours(tenant: TenantID, from: Date, to: Date) async throws -> [UsageHour] {
        try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.usageColumns) FROM usage_hours
            WHERE tenant_id = \(tenant.rawValue) AND period_start >= \(from.postgres) AND period_start < \(to.postgres)
            ORDER BY period_start
            """
        ).map(PostgresRecordCodec.usageHour)
    }

    public func usageHours(
        from: Date, to: Date, after: (periodStart: Date, tenant: TenantID)?, limit: Int
    ) async throws -> [UsageHour] {
        try Self.checkLimit(limit)
        return try await read(
            """
            SELECT \(unescaped: PostgresRecordCodec.usageColumns) FROM usage_hours
            WHERE period_start >= \(from.postgres) AND period_start < \(to.postgres)
              AND (\(after?.periodStart.postgres)::timestamptz IS NULL
                   OR (period_start, tenant_id COLLATE "C") > (\(after?.periodStart.postgres)::timestamptz, \(after?.tenant.rawValue)::text))
            ORDER BY period_start, tenant_id COLLATE "C"
            LIMIT \(limit)
            """
        ).map(PostgresRecordCodec.usageHour)
    }

    // MARK: Idempotency

    public func claimIdempotencyKey(
        _ key: IdempotencyKey, for request: IdempotentRequest, now: Date, staleAfter: TimeInterval
    ) async throws -> IdempotencyClaim {
        let secrets = self.secrets
        let expiresAt = now.addingTimeInterval(Self.idempotencyTTL)
        let staleBefore = now.addingTimeInterval(-staleAfter)
        let bodyHash = Data(request.bodyHash)
        return try await inTransaction { connection in
            let logger = self.logger
            // Under READ COMMITTED a concurrent insert of the same key waits for the other
            // transaction, then does nothing: exactly one claimant inserts.
            let inserted = try await connection.rows(
                """
                INSERT INTO idempotency_records (scope, key, method, path, body_hash, state, created_at, expires_at)
                VALUES (\(key.scope), \(key.key), \(request.method), \(request.path), \(bodyHash), 'in_progress',
                        \(now.postgres), \(expiresAt.postgres))
                ON CONFLICT (scope, key) DO NOTHING
                RETURNING key
                """, logger: logger)
            if !inserted.isEmpty { return .claimed }
            let existing = try await connection.rows(
                """
                SELECT method, path, body_hash, state, response_status, response_headers, response_body, created_at, expires_at
                FROM idempotency_records WHERE scope = \(key.scope) AND key = \(key.key)
                FOR UPDATE
                """, logger: logger)
            guard let row = existing.first else {
                // Released or purged between the two statements: the key is free now.
                let retried = try await connection.rows(
                    """
                    INSERT INTO idempotency_records (scope, key, method, path, body_hash, state, created_at, expires_at)
                    VALUES (\(key.scope), \(key.key), \(request.method), \(request.path), \(bodyHash), 'in_progress',
                            \(now.postgres), \(expiresAt.postgres))
                    ON CONFLICT (scope, key) DO NOTHING
                    RETURNING key
                    """, logger: logger)
                return retried.isEmpty ? .inProgress : .claimed
            }
            let (method, path, storedHash, state, status, headers, sealedBody, createdAt, storedExpiry) = try row.decode(
                (String, String, Data, String, Int32?, String?, Data?, PostgresTimestamp, PostgresTimestamp).self)
            let expired = storedExpiry.date <= now
            let stale = state == "in_progress" && createdAt.date < staleBefore
            if expired || stale {
                try await connection.rows(
                    """
                    UPDATE idempotency_records SET method = \(request.method), path = \(request.path), body_hash = \(bodyHash),
                        state = 'in_progress', response_status = NULL, response_headers = NULL, response_body = NULL,
                        created_at = \(now.postgres), expires_at = \(expiresAt.postgres)
                    WHERE scope = \(key.scope) AND key = \(key.key)
                    """, logger: logger)
                return .claimed
            }
            // A running claim answers "in progress" whatever it was sent with: its request is not
            // known to be final until it completes.
            guard state == "completed" else { return .inProgress }
            guard method == request.method, path == request.path, storedHash == bodyHash else { return .mismatch }
            guard let status, let headers, let sealedBody else {
                throw MetadataError.unavailable("idempotency key \(key.key) is completed without a response")
            }
            let body = try secrets.open([UInt8](sealedBody), kid: PostgresRecordCodec.idempotencyAssociatedData(key))
            return .completed(StoredResponse(status: Int(status), headers: try PostgresRecordCodec.headers(json: headers), body: body))
        }
    }

    public func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws {
        try await PostgresMetadataTransaction.completeIdempotencyKey(key, with: response, expiresAt: expiresAt, secrets: secrets) {
            try await self.read($0)
        }
    }

    public func releaseIdempotencyKey(_ key: IdempotencyKey) async throws {
        try await read(
            "DELETE FROM idempotency_records WHERE scope = \(key.scope) AND key = \(key.key) AND state = 'in_progress'")
    }

    @discardableResult
    public func purgeIdempotencyKeys(expiredBefore: Date) async throws -> Int {
        let rows = try await read(
            """
            WITH purged AS (DELETE FROM idempotency_records WHERE expires_at <= \(expiredBefore.postgres) RETURNING 1)
            SELECT count(*) FROM purged
            """)
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    // MARK: Helpers

    /// A page holds at least one item, so paging always moves forward.
    static func checkLimit(_ limit: Int) throws(MetadataError) {
        guard limit > 0 else { throw .invalid("a page holds at least one item (limit \(limit))") }
    }

    /// `columns` qualified with a table alias (`a, b` → `t.a, t.b`).
    static func prefixed(_ columns: String, _ alias: String) -> String {
        columns.split(separator: ",").map { "\(alias).\($0.trimmingCharacters(in: .whitespaces))" }.joined(separator: ", ")
    }

    /// Deltas summed per (tenant, hour): sums add, peaks take the maximum, storage the last
    /// value given; ordered by tenant (bytewise), then hour.
    static func merged(_ deltas: [UsageHour]) -> [UsageHour] {
        var merged: [UsageKey: UsageHour] = [:]
        for delta in deltas {
            let key = UsageKey(tenant: delta.tenant.rawValue, micros: PostgresTimestamp.microseconds(delta.periodStart))
            guard var row = merged[key] else {
                merged[key] = delta
                continue
            }
            row.operations += delta.operations
            row.bytesIn += delta.bytesIn
            row.bytesOut += delta.bytesOut
            row.connectionSeconds += delta.connectionSeconds
            row.peakConnections = max(row.peakConnections, delta.peakConnections)
            row.storageBytes = delta.storageBytes
            merged[key] = row
        }
        return merged.sorted { left, right in
            let (a, b) = (Array(left.key.tenant.utf8), Array(right.key.tenant.utf8))
            return a != b ? a.lexicographicallyPrecedes(b) : left.key.micros < right.key.micros
        }.map(\.value)
    }

    private struct UsageKey: Hashable {
        var tenant: String
        var micros: Int64
    }
}

/// An error `write`'s body threw itself: it is rethrown as is, not mapped.
struct TransactionBodyError: Error {
    var error: any Error
}
