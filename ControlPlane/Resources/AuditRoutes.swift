import Foundation
import Metadata
import Tenancy

/// `GET /v1/audit`: every change, newest first, filterable and paginated.
struct AuditRoutes {
    static let actions = [
        "tenant.create", "tenant.update", "tenant.suspend", "tenant.resume", "tenant.delete",
        "signing_key.create", "signing_key.revoke", "quota.replace", "quota.reset", "schema.put", "schema.delete",
        "admin_token.create", "admin_token.revoke",
    ]

    static func list(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["tenant", "actor", "action", "from", "to", "limit", "cursor"])
        var filter = AuditFilter()
        if let tenant = try call.queryValue("tenant") {
            guard TextRules.isIdentifier(tenant, prefix: "tn_", count: 20) else { throw APIError.validation(parameter: "tenant", "is not a tenant id") }
            filter.tenant = TenantID(tenant)
        }
        if let actor = try call.queryValue("actor") {
            guard actor == AdminCaller.bootstrapActor || actor == "system" || TextRules.isIdentifier(actor, prefix: "adm_", count: 20) else {
                throw APIError.validation(parameter: "actor", "must be an admin token id, bootstrap or system")
            }
            filter.actor = actor
        }
        if let action = try call.queryValue("action") {
            guard actions.contains(action) else { throw APIError.validation(parameter: "action", "must be one of \(actions.joined(separator: ", "))") }
            filter.action = action
        }
        filter.from = try call.timeQuery("from", required: false)
        filter.to = try call.timeQuery("to", required: false)
        let limit = try call.limit()
        let filters = "audit|\(filter.tenant?.rawValue ?? "")|\(filter.actor ?? "")|\(filter.action ?? "")|\(filter.from.map(RFC3339.format) ?? "")|\(filter.to.map(RFC3339.format) ?? "")"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        let page = try await call.store.auditEvents(filter, after: after, limit: limit)
        return .json(.ok, ListBody(items: page.items.map(AuditEventBody.init), next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }
}
