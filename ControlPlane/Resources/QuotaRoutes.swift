import Foundation
import Metadata
import Tenancy

/// `/v1/tenants/{tenant_id}/quotas`: get, replace (`PUT`), reset to the plan (`DELETE`).
struct QuotaRoutes {
    static func get(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        guard let quotas = try await call.store.quotas(tenant: tenantID) else { throw APIError.notFound("no tenant \(tenantID)") }
        return response(quotas)
    }

    static func replace(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        var reader = try BodyReader(try call.requireBody())
        var limits: QuotaLimits?
        if let value = reader.value("limits", required: true) {
            switch reader.child(value, name: "limits") {
            case .success(var child):
                let connections = child.integer("max_connections", required: true, in: 0...10_000_000)
                let operations = child.integer("max_operations_per_second", required: true, in: 0...10_000_000)
                let storage = child.integer("max_storage_bytes", required: true, in: 0...9_007_199_254_740_991)
                let maps = child.integer("max_maps", required: true, in: 0...1_000_000)
                let message = child.integer("max_message_bytes", required: true, in: 1024...2_097_152)
                let subscriptions = child.integer("max_live_subscriptions", required: true, in: 0...10_000_000)
                do { try child.finish() } catch { reader.absorb(error) }
                if let connections, let operations, let storage, let maps, let message, let subscriptions {
                    limits = QuotaLimits(
                        maxConnections: connections, maxOperationsPerSecond: operations, maxStorageBytes: storage,
                        maxMaps: maps, maxMessageBytes: message, maxLiveSubscriptions: subscriptions)
                }
            case .failure(let error):
                reader.absorb(error)
            }
        }
        // What GET returns may come back whole (see ReadOnlyMembers).
        let readOnly = ReadOnlyMembers(["tenant_id", "plan", "source", "version", "updated_at"], instants: ["updated_at"], from: &reader)
        try reader.finish()
        guard let limits else { throw APIError.validation(pointer: "/limits", "is required") }
        let ifMatch = call.headers[.ifMatch]
        try EntityTag.checkIfMatch(ifMatch)
        return try await call.write { transaction in
            let tenant = try await TenantRoutes.lockLiveTenant(tenantID, transaction)
            var stored = try await storedQuotas(tenantID, transaction, now: call.now)
            let before = TenantQuotas(tenant: tenant, stored: stored)
            let tag = EntityTag.make(stored.version)
            guard EntityTag.ifMatchAllows(ifMatch, current: tag) else { throw EntityTag.preconditionFailed(current: tag) }
            try readOnly.check(against: ReadOnlyMembers.representation(QuotasBody(before)))
            guard stored.custom != limits else { return response(before) }
            stored.custom = limits
            stored.version += 1
            stored.updatedAt = call.now
            try await transaction.saveQuotas(stored)
            try await transaction.appendAudit(call.auditEvent(
                "quota.replace", tenant: tenantID, targetType: "quota", targetID: tenantID.rawValue,
                details: ["from": QuotaLimitsBody(before.limits).json, "to": QuotaLimitsBody(limits).json]))
            try await transaction.publish(.quota(tenantID))
            return response(TenantQuotas(tenant: tenant, stored: stored))
        }
    }

    static func reset(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let ifMatch = call.headers[.ifMatch]
        try EntityTag.checkIfMatch(ifMatch)
        return try await call.write { transaction in
            let tenant = try await TenantRoutes.lockLiveTenant(tenantID, transaction)
            var stored = try await storedQuotas(tenantID, transaction, now: call.now)
            let tag = EntityTag.make(stored.version)
            guard EntityTag.ifMatchAllows(ifMatch, current: tag) else { throw EntityTag.preconditionFailed(current: tag) }
            guard stored.custom != nil else { return response(TenantQuotas(tenant: tenant, stored: stored)) }
            let before = TenantQuotas(tenant: tenant, stored: stored)
            stored.custom = nil
            stored.version += 1
            stored.updatedAt = call.now
            try await transaction.saveQuotas(stored)
            let after = TenantQuotas(tenant: tenant, stored: stored)
            try await transaction.appendAudit(call.auditEvent(
                "quota.reset", tenant: tenantID, targetType: "quota", targetID: tenantID.rawValue,
                details: ["from": QuotaLimitsBody(before.limits).json, "to": QuotaLimitsBody(after.limits).json]))
            try await transaction.publish(.quota(tenantID))
            return response(after)
        }
    }

    /// Every tenant has a quotas row from its creation; one missing (a damaged database) is
    /// recreated following the plan rather than failing every request.
    private static func storedQuotas(_ tenantID: TenantID, _ transaction: any MetadataTransaction, now: Date) async throws -> StoredQuotas {
        if let stored = try await transaction.quotas(tenant: tenantID) { return stored }
        let stored = StoredQuotas(tenant: tenantID, custom: nil, version: 1, updatedAt: now)
        try await transaction.saveQuotas(stored)
        return stored
    }

    private static func response(_ quotas: TenantQuotas) -> APIResponse {
        .json(.ok, QuotasBody(quotas), headers: [(.eTag, EntityTag.make(quotas.version))])
    }
}
