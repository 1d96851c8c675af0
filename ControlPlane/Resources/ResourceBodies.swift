import TopGunCore
import Foundation
import Metadata
import Tenancy

// The JSON shapes of the contract's resources. Member names are the contract's snake_case;
// nil optionals are left out.

struct TenantBody: Encodable {
    var id: String
    var slug: String
    var display_name: String
    var plan: String
    var status: String
    var suspension_reason: String?
    var created_at: String
    var updated_at: String
    var suspended_at: String?
    var deleted_at: String?

    init(_ tenant: Tenant) {
        id = tenant.id.rawValue
        slug = tenant.slug
        display_name = tenant.displayName
        plan = tenant.plan
        status = tenant.status.rawValue
        suspension_reason = tenant.status == .suspended ? tenant.suspensionReason : nil
        created_at = RFC3339.format(tenant.createdAt)
        updated_at = RFC3339.format(tenant.updatedAt)
        suspended_at = tenant.status == .suspended ? tenant.suspendedAt.map(RFC3339.format) : nil
        deleted_at = tenant.deletedAt.map(RFC3339.format)
    }
}

struct SigningKeyBody: Encodable {
    var kid: String
    var tenant_id: String
    var algorithm: String
    var label: String?
    var status: String
    var created_at: String
    var revoked_at: String?
    var public_key_pem: String?
    var public_key_jwk: RawJSON?
    var secret: String?

    init(_ key: SigningKey, secret: String? = nil) {
        kid = key.kid
        tenant_id = key.tenant.rawValue
        algorithm = key.algorithm.rawValue
        label = key.label
        status = key.status.rawValue
        created_at = RFC3339.format(key.createdAt)
        revoked_at = key.revokedAt.map(RFC3339.format)
        if let jwk = key.publicKeyJWK {
            public_key_jwk = RawJSON(text: jwk)
        } else if case .publicKeyPEM(let pem) = key.material {
            public_key_pem = pem
        }
        self.secret = secret
    }
}

/// A JSON value stored as text, written back as the value it is.
struct RawJSON: Encodable {
    var text: String

    func encode(to encoder: any Encoder) throws {
        let value = (try? JSONValue.parse(Array(text.utf8))) ?? .object([:])
        try value.encode(to: encoder)
    }
}

struct QuotaLimitsBody: Codable {
    var max_connections: Int64
    var max_operations_per_second: Int64
    var max_storage_bytes: Int64
    var max_maps: Int64
    var max_message_bytes: Int64
    var max_live_subscriptions: Int64

    init(_ limits: QuotaLimits) {
        max_connections = limits.maxConnections
        max_operations_per_second = limits.maxOperationsPerSecond
        max_storage_bytes = limits.maxStorageBytes
        max_maps = limits.maxMaps
        max_message_bytes = limits.maxMessageBytes
        max_live_subscriptions = limits.maxLiveSubscriptions
    }

    var limits: QuotaLimits {
        QuotaLimits(
            maxConnections: max_connections, maxOperationsPerSecond: max_operations_per_second,
            maxStorageBytes: max_storage_bytes, maxMaps: max_maps, maxMessageBytes: max_message_bytes,
            maxLiveSubscriptions: max_live_subscriptions)
    }

    var json: JSONValue {
        .object([
            "max_connections": .integer(max_connections),
            "max_operations_per_second": .integer(max_operations_per_second),
            "max_storage_bytes": .integer(max_storage_bytes),
            "max_maps": .integer(max_maps),
            "max_message_bytes": .integer(max_message_bytes),
            "max_live_subscriptions": .integer(max_live_subscriptions),
        ])
    }
}

struct QuotasBody: Encodable {
    var tenant_id: String
    var plan: String
    var source: String
    var version: Int64
    var updated_at: String
    var limits: QuotaLimitsBody

    init(_ quotas: TenantQuotas) {
        tenant_id = quotas.tenant.rawValue
        plan = quotas.plan
        source = quotas.source.rawValue
        version = quotas.version
        updated_at = RFC3339.format(quotas.updatedAt)
        limits = QuotaLimitsBody(quotas.limits)
    }
}

struct MapSchemaBody: Encodable {
    var tenant_id: String
    var map: String
    var version: Int
    var enforcement: String
    var schema: RawJSON
    var created_at: String

    init(_ version: MapSchemaVersion) {
        tenant_id = version.tenant.rawValue
        map = version.map
        self.version = version.version
        enforcement = version.enforcement.rawValue
        schema = RawJSON(text: version.schemaJSON)
        created_at = RFC3339.format(version.createdAt)
    }
}

struct AuditEventBody: Encodable {
    struct Target: Encodable {
        var type: String
        var id: String
        var version: Int?
    }

    var id: String
    var time: String
    var actor: String
    var action: String
    var tenant_id: String?
    var target: Target
    var request_id: String
    var idempotency_key: String?
    var details: RawJSON?

    init(_ event: AuditEvent) {
        id = event.id
        time = RFC3339.format(event.time)
        actor = event.actor
        action = event.action
        tenant_id = event.tenant?.rawValue
        target = Target(type: event.targetType, id: event.targetID, version: event.targetVersion)
        request_id = event.requestID
        idempotency_key = event.idempotencyKey
        details = event.detailsJSON == "{}" ? nil : RawJSON(text: event.detailsJSON)
    }
}

struct AdminTokenBody: Encodable {
    var id: String
    var name: String
    var scopes: [String]
    var status: String
    var prefix: String
    var created_at: String
    var created_by: String
    var expires_at: String?
    var last_used_at: String?
    var revoked_at: String?
    var token: String?

    init(_ record: AdminTokenRecord, now: Date, token: String? = nil) {
        id = record.id
        name = record.name
        scopes = record.scopes.compactMap(AdminScope.init(rawValue:)).sorted().map(\.rawValue)
        status = record.status(at: now).rawValue
        prefix = record.prefix
        created_at = RFC3339.format(record.createdAt)
        created_by = record.createdBy
        expires_at = record.expiresAt.map(RFC3339.format)
        last_used_at = token == nil ? record.lastUsedAt.map(RFC3339.format) : nil
        revoked_at = record.revokedAt.map(RFC3339.format)
        self.token = token
    }
}
