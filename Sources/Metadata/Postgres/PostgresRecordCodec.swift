import Foundation
import PostgresNIO
import Tenancy

/// The columns the PostgreSQL store selects for each record, and how a row becomes the record.
/// Each `...Columns` list matches its decoder, column for column.
enum PostgresRecordCodec {
    // MARK: Tenants

    static let tenantColumns =
        "id, slug, display_name, plan, status, created_at, updated_at, suspended_at, suspension_reason, deleted_at"

    static func tenant(_ row: PostgresRow) throws -> Tenant {
        let (id, slug, displayName, plan, statusText, createdAt, updatedAt, suspendedAt, reason, deletedAt) = try row.decode(
            (String, String, String, String, String, PostgresTimestamp, PostgresTimestamp, PostgresTimestamp?, String?, PostgresTimestamp?).self)
        guard let status = Tenant.Status(rawValue: statusText) else {
            throw MetadataError.unavailable("tenant \(id) has unknown status '\(statusText)'")
        }
        return Tenant(
            id: TenantID(id), slug: slug, displayName: displayName, plan: plan, status: status, createdAt: createdAt.date,
            updatedAt: updatedAt.date, suspendedAt: suspendedAt?.date, suspensionReason: reason, deletedAt: deletedAt?.date)
    }

    // MARK: Signing keys

    static let keyColumns =
        "kid, tenant_id, algorithm, secret_ciphertext, public_key_pem, status, created_at, revoked_at, label, public_key_jwk"

    static func signingKey(_ row: PostgresRow, secrets: SecretBox) throws -> SigningKey {
        let (kid, tenant, algorithmText, sealed, publicKey, statusText, createdAt, revokedAt, label, jwk) = try row.decode(
            (String, String, String, Data?, String?, String, PostgresTimestamp, PostgresTimestamp?, String?, String?).self)
        guard let algorithm = SigningAlgorithm(rawValue: algorithmText), let status = SigningKey.Status(rawValue: statusText) else {
            throw MetadataError.unavailable("signing key \(kid) has unknown algorithm or status")
        }
        let material: SigningKey.Material
        switch (algorithm, sealed, publicKey) {
        case (.hs256, let sealed?, _): material = .hmacSecret(try secrets.open([UInt8](sealed), kid: kid))
        case (.hs256, nil, _): throw MetadataError.unavailable("signing key \(kid) has no secret")
        case (_, _, let publicKey?): material = .publicKeyPEM(publicKey)
        case (_, _, nil): throw MetadataError.unavailable("signing key \(kid) has no public key")
        }
        return SigningKey(
            kid: kid, tenant: TenantID(tenant), algorithm: algorithm, material: material, status: status,
            createdAt: createdAt.date, revokedAt: revokedAt?.date, label: label, publicKeyJWK: jwk)
    }

    // MARK: Quotas

    static let quotaColumns = """
        tenant_id, custom_max_connections, custom_max_operations_per_second, custom_max_storage_bytes, custom_max_maps, \
        custom_max_message_bytes, custom_max_live_subscriptions, version, updated_at
        """

    static func storedQuotas(_ row: PostgresRow) throws -> StoredQuotas {
        let (tenant, connections, operations, storage, maps, messageBytes, subscriptions, version, updatedAt) = try row.decode(
            (String, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64, PostgresTimestamp).self)
        var custom: QuotaLimits?
        // The table's check constraint keeps the six all set or all NULL.
        if let connections, let operations, let storage, let maps, let messageBytes, let subscriptions {
            custom = QuotaLimits(
                maxConnections: connections, maxOperationsPerSecond: operations, maxStorageBytes: storage, maxMaps: maps,
                maxMessageBytes: messageBytes, maxLiveSubscriptions: subscriptions)
        }
        return StoredQuotas(tenant: TenantID(tenant), custom: custom, version: version, updatedAt: updatedAt.date)
    }

    // MARK: Map schemas

    static let schemaColumns = "tenant_id, map, version, enforcement, schema_json, created_at"

    static func schemaVersion(_ row: PostgresRow) throws -> MapSchemaVersion {
        let (tenant, map, version, enforcementText, schemaJSON, createdAt) =
            try row.decode((String, String, Int32, String, String, PostgresTimestamp).self)
        guard let enforcement = SchemaEnforcement(rawValue: enforcementText) else {
            throw MetadataError.unavailable("schema \(map) v\(version) of tenant \(tenant) has unknown enforcement '\(enforcementText)'")
        }
        return MapSchemaVersion(
            tenant: TenantID(tenant), map: map, version: Int(version), enforcement: enforcement, schemaJSON: schemaJSON,
            createdAt: createdAt.date)
    }

    // MARK: Audit

    static let auditColumns =
        "id, time, actor, action, tenant_id, target_type, target_id, target_version, request_id, idempotency_key, details"

    static func auditEvent(_ row: PostgresRow) throws -> AuditEvent {
        let (id, time, actor, action, tenant, targetType, targetID, targetVersion, requestID, idempotencyKey, details) = try row.decode(
            (String, PostgresTimestamp, String, String, String?, String, String, Int32?, String, String?, String).self)
        return AuditEvent(
            id: id, time: time.date, actor: actor, action: action, tenant: tenant.map { TenantID($0) }, targetType: targetType,
            targetID: targetID, targetVersion: targetVersion.map(Int.init), requestID: requestID, idempotencyKey: idempotencyKey,
            detailsJSON: details)
    }

    // MARK: Admin tokens

    static let adminTokenColumns = "id, name, scopes, value_hash, prefix, created_at, created_by, expires_at, last_used_at, revoked_at"

    static func adminToken(_ row: PostgresRow) throws -> AdminTokenRecord {
        let (id, name, scopes, valueHash, prefix, createdAt, createdBy, expiresAt, lastUsedAt, revokedAt) = try row.decode(
            (String, String, String, Data, String, PostgresTimestamp, String, PostgresTimestamp?, PostgresTimestamp?, PostgresTimestamp?).self)
        return AdminTokenRecord(
            id: id, name: name, scopes: scopes.split(separator: " ").map(String.init), valueHash: [UInt8](valueHash), prefix: prefix,
            createdAt: createdAt.date, createdBy: createdBy, expiresAt: expiresAt?.date, lastUsedAt: lastUsedAt?.date,
            revokedAt: revokedAt?.date)
    }

    /// Scopes as stored: space-separated, in the given order.
    static func scopesText(_ scopes: [String]) -> String {
        scopes.joined(separator: " ")
    }

    // MARK: Usage

    static let usageColumns =
        "tenant_id, period_start, operations, bytes_in, bytes_out, connection_seconds, peak_connections, storage_bytes"

    static func usageHour(_ row: PostgresRow) throws -> UsageHour {
        let (tenant, periodStart, operations, bytesIn, bytesOut, connectionSeconds, peak, storage) =
            try row.decode((String, PostgresTimestamp, Int64, Int64, Int64, Int64, Int64, Int64).self)
        return UsageHour(
            tenant: TenantID(tenant), periodStart: periodStart.date, operations: operations, bytesIn: bytesIn, bytesOut: bytesOut,
            connectionSeconds: connectionSeconds, peakConnections: peak, storageBytes: storage)
    }

    // MARK: Idempotency

    /// What seals a stored response body: the record's scope and key, so a body copied onto
    /// another record does not open.
    static func idempotencyAssociatedData(_ key: IdempotencyKey) -> String {
        "idempotency:" + key.scope + ":" + key.key
    }

    static func headersJSON(_ headers: [StoredHeader]) throws -> String {
        do {
            return String(decoding: try JSONEncoder().encode(headers), as: UTF8.self)
        } catch {
            throw MetadataError.invalid("response headers cannot be stored: \(error)")
        }
    }

    static func headers(json: String) throws -> [StoredHeader] {
        do {
            return try JSONDecoder().decode([StoredHeader].self, from: Data(json.utf8))
        } catch {
            throw MetadataError.unavailable("a stored idempotent response has unreadable headers")
        }
    }

    // MARK: Pages

    /// Cuts `rows` (fetched with `limit + 1`) to a page; `next` is the position of its last
    /// item when a further row exists.
    static func page<Item: Sendable>(
        _ rows: [PostgresRow], limit: Int, decode: (PostgresRow) throws -> Item, position: (Item) -> ListPosition
    ) throws -> Page<Item> {
        let items = try rows.prefix(limit).map(decode)
        let more = rows.count > limit
        return Page(items: items, next: more ? items.last.map(position) : nil)
    }
}
