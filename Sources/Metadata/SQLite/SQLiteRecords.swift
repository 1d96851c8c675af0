import Foundation
import SQLiteNIO
import Tenancy

/// Column lists and row decoders of every record the SQLite store keeps, shared by the store's
/// reads and its transactions so that both read rows alike.
enum SQLiteRecords {
    static let tenantColumns =
        "id, slug, display_name, plan, status, created_at, updated_at, suspended_at, suspension_reason, deleted_at"
    static let keyColumns =
        "kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status, created_at, revoked_at, label, public_key_jwk"
    static let quotaColumns = """
        tenant_id, custom_max_connections, custom_max_operations_per_second, custom_max_storage_bytes, \
        custom_max_maps, custom_max_message_bytes, custom_max_live_subscriptions, version, updated_at
        """
    static let auditColumns =
        "id, time, actor, action, tenant_id, target_type, target_id, target_version, request_id, idempotency_key, details"
    static let adminTokenColumns =
        "id, name, scopes, value_hash, prefix, created_at, created_by, expires_at, last_used_at, revoked_at"
    static let usageColumns =
        "tenant_id, period_start, operations, bytes_in, bytes_out, connection_seconds, peak_connections, storage_bytes"

    /// The columns of `map_schema_versions` under the alias `table`, named as in the table
    /// (joins would otherwise leave the names to SQLite).
    static func schemaVersionColumns(_ table: String) -> String {
        ["tenant_id", "map", "version", "enforcement", "schema_json", "created_at"]
            .map { "\(table).\($0) AS \($0)" }
            .joined(separator: ", ")
    }

    // MARK: Decoding

    static func tenant(_ row: SQLiteRow) throws -> Tenant {
        let statusText = try row.requiredText("status")
        guard let status = Tenant.Status(rawValue: statusText) else {
            throw MetadataError.unavailable("tenant row has unknown status '\(statusText)'")
        }
        let createdAt = SQLiteTime.date(try row.requiredInteger("created_at"))
        return Tenant(
            id: TenantID(try row.requiredText("id")),
            slug: try row.requiredText("slug"),
            displayName: try row.requiredText("display_name"),
            plan: try row.requiredText("plan"),
            status: status,
            createdAt: createdAt,
            updatedAt: row.optionalTime("updated_at") ?? createdAt,
            suspendedAt: row.optionalTime("suspended_at"),
            suspensionReason: row.column("suspension_reason")?.string,
            deletedAt: row.optionalTime("deleted_at"))
    }

    static func signingKey(_ row: SQLiteRow, secrets: SecretBox) throws -> SigningKey {
        let kid = try row.requiredText("kid")
        let algorithmText = try row.requiredText("algorithm")
        let statusText = try row.requiredText("status")
        guard let algorithm = SigningAlgorithm(rawValue: algorithmText), let status = SigningKey.Status(rawValue: statusText) else {
            throw MetadataError.unavailable("signing key row \(kid) has unknown algorithm or status")
        }
        let material: SigningKey.Material
        if algorithm == .hs256 {
            guard let sealed = row.column("secret_ciphertext")?.blob else {
                throw MetadataError.unavailable("signing key \(kid) has no secret")
            }
            material = .hmacSecret(try secrets.open(Array(sealed.readableBytesView), kid: kid))
        } else {
            material = .publicKeyPEM(try row.requiredText("public_key_pem"))
        }
        return SigningKey(
            kid: kid,
            tenant: TenantID(try row.requiredText("tenant_id")),
            algorithm: algorithm,
            material: material,
            status: status,
            createdAt: SQLiteTime.date(try row.requiredInteger("created_at")),
            revokedAt: row.optionalTime("revoked_at"),
            label: row.column("label")?.string,
            publicKeyJWK: row.column("public_key_jwk")?.string)
    }

    /// `updatedAtColumn` names the quotas' time in a join that also reads the tenant's.
    static func storedQuotas(_ row: SQLiteRow, updatedAtColumn: String = "updated_at") throws -> StoredQuotas {
        var custom: QuotaLimits?
        // The table's check keeps the six custom columns all set or all NULL.
        if let maxConnections = row.column("custom_max_connections")?.integer {
            custom = QuotaLimits(
                maxConnections: Int64(maxConnections),
                maxOperationsPerSecond: Int64(try row.requiredInteger("custom_max_operations_per_second")),
                maxStorageBytes: Int64(try row.requiredInteger("custom_max_storage_bytes")),
                maxMaps: Int64(try row.requiredInteger("custom_max_maps")),
                maxMessageBytes: Int64(try row.requiredInteger("custom_max_message_bytes")),
                maxLiveSubscriptions: Int64(try row.requiredInteger("custom_max_live_subscriptions")))
        }
        return StoredQuotas(
            tenant: TenantID(try row.requiredText("tenant_id")),
            custom: custom,
            version: Int64(try row.requiredInteger("version")),
            updatedAt: SQLiteTime.date(try row.requiredInteger(updatedAtColumn)))
    }

    static func schemaVersion(_ row: SQLiteRow) throws -> MapSchemaVersion {
        let enforcementText = try row.requiredText("enforcement")
        guard let enforcement = SchemaEnforcement(rawValue: enforcementText) else {
            throw MetadataError.unavailable("schema row has unknown enforcement '\(enforcementText)'")
        }
        return MapSchemaVersion(
            tenant: TenantID(try row.requiredText("tenant_id")),
            map: try row.requiredText("map"),
            version: Int(try row.requiredInteger("version")),
            enforcement: enforcement,
            schemaJSON: try row.requiredText("schema_json"),
            createdAt: SQLiteTime.date(try row.requiredInteger("created_at")))
    }

    static func auditEvent(_ row: SQLiteRow) throws -> AuditEvent {
        AuditEvent(
            id: try row.requiredText("id"),
            time: SQLiteTime.date(try row.requiredInteger("time")),
            actor: try row.requiredText("actor"),
            action: try row.requiredText("action"),
            tenant: row.column("tenant_id")?.string.map { TenantID($0) },
            targetType: try row.requiredText("target_type"),
            targetID: try row.requiredText("target_id"),
            targetVersion: row.column("target_version")?.integer.map { Int($0) },
            requestID: try row.requiredText("request_id"),
            idempotencyKey: row.column("idempotency_key")?.string,
            detailsJSON: try row.requiredText("details"))
    }

    static func adminToken(_ row: SQLiteRow) throws -> AdminTokenRecord {
        AdminTokenRecord(
            id: try row.requiredText("id"),
            name: try row.requiredText("name"),
            scopes: try row.requiredText("scopes").split(separator: " ").map(String.init),
            valueHash: try row.requiredBytes("value_hash"),
            prefix: try row.requiredText("prefix"),
            createdAt: SQLiteTime.date(try row.requiredInteger("created_at")),
            createdBy: try row.requiredText("created_by"),
            expiresAt: row.optionalTime("expires_at"),
            lastUsedAt: row.optionalTime("last_used_at"),
            revokedAt: row.optionalTime("revoked_at"))
    }

    static func usageHour(_ row: SQLiteRow) throws -> UsageHour {
        UsageHour(
            tenant: TenantID(try row.requiredText("tenant_id")),
            periodStart: SQLiteTime.date(try row.requiredInteger("period_start")),
            operations: Int64(try row.requiredInteger("operations")),
            bytesIn: Int64(try row.requiredInteger("bytes_in")),
            bytesOut: Int64(try row.requiredInteger("bytes_out")),
            connectionSeconds: Int64(try row.requiredInteger("connection_seconds")),
            peakConnections: Int64(try row.requiredInteger("peak_connections")),
            storageBytes: Int64(try row.requiredInteger("storage_bytes")))
    }

    // MARK: Pages

    /// Cuts rows fetched with `limit + 1` to a page: `next` is the last item's position when a
    /// further row exists.
    static func page<Item: Sendable>(
        _ rows: [SQLiteRow], limit: Int, decode: (SQLiteRow) throws -> Item, position: (Item) -> ListPosition
    ) throws -> Page<Item> {
        let items = try rows.prefix(limit).map(decode)
        let next = rows.count > limit ? items.last.map(position) : nil
        return Page(items: items, next: next)
    }

    /// A list's page size, refused when it is not positive (a page of none never ends).
    static func checkLimit(_ limit: Int) throws(MetadataError) {
        guard limit > 0 else { throw .invalid("a page holds at least one item (limit \(limit))") }
    }
}

extension SQLiteData {
    static func time(_ date: Date) -> SQLiteData { .integer(SQLiteTime.micros(date)) }
    static func optionalTime(_ date: Date?) -> SQLiteData { date.map { .integer(SQLiteTime.micros($0)) } ?? .null }
    static func optionalText(_ text: String?) -> SQLiteData { text.map { .text($0) } ?? .null }
    static func optionalInteger(_ value: Int64?) -> SQLiteData { value.map { .integer(SQLiteInt64($0)) } ?? .null }
    static func bytes(_ bytes: [UInt8]) -> SQLiteData { .blob(ByteBuffer(bytes: bytes)) }
}

extension SQLiteRow {
    func optionalTime(_ column: String) -> Date? {
        guard let data = self.column(column), case .integer(let micros) = data else { return nil }
        return SQLiteTime.date(micros)
    }

    func requiredBytes(_ column: String) throws -> [UInt8] {
        guard let buffer = self.column(column)?.blob else {
            throw MetadataError.unavailable("row has no blob column \(column)")
        }
        return Array(buffer.readableBytesView)
    }
}
