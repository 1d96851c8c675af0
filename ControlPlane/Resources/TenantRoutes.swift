import TopGunCore
import Foundation
import Metadata
import Tenancy

/// `/v1/tenants`: create, list, get, update, suspend, resume, delete (soft).
struct TenantRoutes {
    static func create(_ call: APICall) async throws -> APIResponse {
        var reader = try BodyReader(try call.requireBody())
        let slug = reader.string("slug", required: true, check: TextRules.slug)
        let displayName = reader.string("display_name", required: true, check: TextRules.label(maximum: 200))
        let plan = reader.string("plan", check: TextRules.oneOf(Plan.allCases.map(\.rawValue))) ?? Plan.free.rawValue
        try reader.finish()
        guard let slug, let displayName else { throw APIError.validation(pointer: "", "slug and display_name are required") }
        let tenant = Tenant(
            id: IDGenerator.tenantID(), slug: slug, displayName: displayName, plan: plan, status: .active, createdAt: call.now)
        return try await call.write { transaction in
            do {
                try await transaction.insertTenant(tenant)
            } catch MetadataError.conflict {
                throw APIError.conflict("the slug '\(slug)' is taken", field: "slug")
            }
            try await transaction.appendAudit(call.auditEvent(
                "tenant.create", tenant: tenant.id, targetType: "tenant", targetID: tenant.id.rawValue,
                details: ["slug": .string(slug), "plan": .string(plan)]))
            try await transaction.publish(.tenant(tenant.id))
            return .json(.created, TenantBody(tenant), headers: [(.location, "/v1/tenants/\(tenant.id.rawValue)")])
        }
    }

    static func list(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["status", "plan", "slug", "limit", "cursor"])
        let status = try call.enumQuery("status", Tenant.Status.self)
        let plan = try call.enumQuery("plan", Plan.self)
        let slug = try call.queryValue("slug")
        if let slug, TextRules.slug(slug) != nil { throw APIError.validation(parameter: "slug", "is not a valid slug") }
        let limit = try call.limit()
        let filters = "tenants|\(status?.rawValue ?? "")|\(plan?.rawValue ?? "")|\(slug ?? "")"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        let statuses: Set<Tenant.Status> = status.map { [$0] } ?? [.active, .suspended]
        if let slug {
            // Slugs are unique: at most one tenant, on one page.
            var items: [Tenant] = []
            if after == nil, let tenant = try await call.store.tenant(slug: slug),
               statuses.contains(tenant.status), plan.map({ $0.rawValue == tenant.plan }) ?? true {
                items = [tenant]
            }
            return .json(.ok, ListBody(items: items.map(TenantBody.init), next_cursor: nil))
        }
        let page = try await call.store.tenants(statuses: statuses, plan: plan?.rawValue, after: after, limit: limit)
        return .json(.ok, ListBody(
            items: page.items.map(TenantBody.init),
            next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }

    static func get(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let id = try call.tenantID()
        guard let tenant = try await call.store.tenant(id: id) else { throw APIError.notFound("no tenant \(id)") }
        return .json(.ok, TenantBody(tenant))
    }

    static func update(_ call: APICall) async throws -> APIResponse {
        let id = try call.tenantID()
        var reader = try BodyReader(try call.requireBody())
        let displayName = reader.string("display_name", check: TextRules.label(maximum: 200))
        let plan = reader.string("plan", check: TextRules.oneOf(Plan.allCases.map(\.rawValue)))
        if reader.isEmpty { reader.problem(nil, "name at least one member to change (display_name, plan)") }
        try reader.finish()
        return try await call.write { transaction in
            var tenant = try await lockLiveTenant(id, transaction)
            var details = JSONObject()
            if let displayName, displayName != tenant.displayName {
                details["display_name"] = .object(["from": .string(tenant.displayName), "to": .string(displayName)])
                tenant.displayName = displayName
            }
            var quotasMoved = false
            if let plan, plan != tenant.plan {
                details["plan"] = .object(["from": .string(tenant.plan), "to": .string(plan)])
                tenant.plan = plan
                if var quotas = try await transaction.quotas(tenant: id), quotas.custom == nil {
                    // Plan-following limits move with the plan: a new version, a new ETag.
                    quotas.version += 1
                    quotas.updatedAt = call.now
                    try await transaction.saveQuotas(quotas)
                    quotasMoved = true
                }
            }
            guard !details.isEmpty else { return .json(.ok, TenantBody(tenant)) }
            tenant.updatedAt = call.now
            try await transaction.updateTenant(tenant)
            try await transaction.appendAudit(call.auditEvent(
                "tenant.update", tenant: id, targetType: "tenant", targetID: id.rawValue, details: details))
            try await transaction.publish(.tenant(id))
            if quotasMoved { try await transaction.publish(.quota(id)) }
            return .json(.ok, TenantBody(tenant))
        }
    }

    static func suspend(_ call: APICall) async throws -> APIResponse {
        let id = try call.tenantID()
        var reasonGiven: String?
        if let body = call.body {
            var reader = try BodyReader(body)
            reasonGiven = reader.string("reason", check: TextRules.text(maximum: 500))
            try reader.finish()
        }
        let reason = reasonGiven
        return try await call.write { transaction in
            var tenant = try await lockLiveTenant(id, transaction, action: "suspended")
            guard tenant.status == .active else { return .json(.ok, TenantBody(tenant)) }
            tenant.status = .suspended
            tenant.suspendedAt = call.now
            tenant.suspensionReason = reason
            tenant.updatedAt = call.now
            try await transaction.updateTenant(tenant)
            try await transaction.appendAudit(call.auditEvent(
                "tenant.suspend", tenant: id, targetType: "tenant", targetID: id.rawValue,
                details: reason.map { ["reason": .string($0)] } ?? [:]))
            try await transaction.publish(.tenant(id))
            return .json(.ok, TenantBody(tenant))
        }
    }

    static func resume(_ call: APICall) async throws -> APIResponse {
        let id = try call.tenantID()
        return try await call.write { transaction in
            var tenant = try await lockLiveTenant(id, transaction, action: "resumed")
            guard tenant.status == .suspended else { return .json(.ok, TenantBody(tenant)) }
            tenant.status = .active
            tenant.suspendedAt = nil
            tenant.suspensionReason = nil
            tenant.updatedAt = call.now
            try await transaction.updateTenant(tenant)
            try await transaction.appendAudit(call.auditEvent("tenant.resume", tenant: id, targetType: "tenant", targetID: id.rawValue))
            try await transaction.publish(.tenant(id))
            return .json(.ok, TenantBody(tenant))
        }
    }

    static func delete(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let id = try call.tenantID()
        return try await call.write { transaction in
            guard var tenant = try await transaction.lockTenant(id) else { throw APIError.notFound("no tenant \(id)") }
            guard tenant.status != .deleted else { return .json(.ok, TenantBody(tenant)) }
            tenant.status = .deleted
            tenant.deletedAt = call.now
            tenant.suspendedAt = nil
            tenant.suspensionReason = nil
            tenant.updatedAt = call.now
            try await transaction.updateTenant(tenant)
            try await transaction.appendAudit(call.auditEvent("tenant.delete", tenant: id, targetType: "tenant", targetID: id.rawValue))
            try await transaction.publish(.tenant(id))
            return .json(.ok, TenantBody(tenant))
        }
    }

    /// The tenant, locked for this transaction; 404 if unknown, 409 if deleted (read-only).
    static func lockLiveTenant(_ id: TenantID, _ transaction: any MetadataTransaction, action: String = "changed") async throws -> Tenant {
        guard let tenant = try await transaction.lockTenant(id) else { throw APIError.notFound("no tenant \(id)") }
        guard tenant.status != .deleted else {
            throw APIError.conflict("tenant \(id) is deleted; it cannot be \(action)")
        }
        return tenant
    }
}
