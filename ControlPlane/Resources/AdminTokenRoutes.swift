import TopGunCore
import Foundation
import Metadata
import Tenancy

/// `/v1/admin-tokens`: operator credentials with scopes; values shown once, stored as hashes.
struct AdminTokenRoutes {
    static func create(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        var reader = try BodyReader(try call.requireBody())
        let name = reader.string("name", required: true, check: TextRules.label(maximum: 100))
        var scopes: [AdminScope] = []
        if let names = reader.stringArray("scopes", required: true) {
            if names.isEmpty || names.count > AdminScope.allCases.count {
                reader.problem("scopes", "must list 1 to \(AdminScope.allCases.count) scopes")
            }
            if Set(names).count != names.count { reader.problem("scopes", "must not repeat a scope") }
            for (index, name) in names.enumerated() {
                if let scope = AdminScope(rawValue: name) {
                    scopes.append(scope)
                } else {
                    reader.add(FieldProblem(pointer: reader.path("scopes") + "/\(index)", "is not a scope"))
                }
            }
        }
        var expiresAt: Date?
        if let text = reader.string("expires_at") {
            if let date = RFC3339.parse(text) {
                if date > call.now { expiresAt = date } else { reader.problem("expires_at", "must be in the future") }
            } else {
                reader.problem("expires_at", "must be an RFC 3339 instant")
            }
        }
        try reader.finish()
        guard let name else { throw APIError.validation(pointer: "/name", "is required") }
        let missing = Set(scopes).subtracting(call.caller.scopes)
        guard missing.isEmpty else {
            var error = APIError(.forbidden, "a token can only grant scopes it has itself")
            error.missingScopes = missing.sorted()
            throw error
        }
        let value = AdminTokenValue.generate()
        let record = AdminTokenRecord(
            id: IDGenerator.adminTokenID(), name: name, scopes: scopes.sorted().map(\.rawValue),
            valueHash: AdminTokenValue.hash(value), prefix: AdminTokenValue.displayPrefix(value),
            createdAt: call.now, createdBy: call.caller.actor, expiresAt: expiresAt)
        return try await call.write { transaction in
            try await transaction.insertAdminToken(record)
            try await transaction.appendAudit(call.auditEvent(
                "admin_token.create", tenant: nil, targetType: "admin_token", targetID: record.id,
                details: ["scopes": .array(record.scopes.map(JSONValue.string))]))
            return .json(.created, AdminTokenBody(record, now: call.now, token: value), headers: [
                (.location, "/v1/admin-tokens/\(record.id)"),
                (.cacheControl, "no-store"),
            ])
        }
    }

    static func list(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["status", "limit", "cursor"])
        let status = try call.enumQuery("status", AdminTokenRecord.Status.self)
        let limit = try call.limit()
        let filters = "admin-tokens|\(status?.rawValue ?? "")"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        let page = try await call.store.adminTokens(status: status, now: call.now, after: after, limit: limit)
        return .json(.ok, ListBody(
            items: page.items.map { AdminTokenBody($0, now: call.now) },
            next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }

    static func get(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let id = call.pathParameter("token_id")
        guard TextRules.isIdentifier(id, prefix: "adm_", count: 20), let record = try await call.store.adminToken(id: id) else {
            throw APIError.notFound("no admin token \(id.prefix(64))")
        }
        return .json(.ok, AdminTokenBody(record, now: call.now))
    }

    static func revoke(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let id = call.pathParameter("token_id")
        guard TextRules.isIdentifier(id, prefix: "adm_", count: 20), let record = try await call.store.adminToken(id: id) else {
            throw APIError.notFound("no admin token \(id.prefix(64))")
        }
        guard record.revokedAt == nil else { return .json(.ok, AdminTokenBody(record, now: call.now)) }
        return try await call.write { transaction in
            guard let revoked = try await transaction.revokeAdminToken(id: id, at: call.now) else {
                throw APIError.notFound("no admin token \(id)")
            }
            try await transaction.appendAudit(call.auditEvent("admin_token.revoke", tenant: nil, targetType: "admin_token", targetID: id))
            return .json(.ok, AdminTokenBody(revoked, now: call.now))
        }
    }
}
