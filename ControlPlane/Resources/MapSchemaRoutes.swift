import Foundation
import HTTPTypes
import Metadata
import Tenancy

/// `/v1/tenants/{tenant_id}/schemas`: versioned JSON Schemas per map.
struct MapSchemaRoutes {
    static func put(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let map = call.pathParameter("map")
        guard TextRules.isMapName(map) else {
            throw APIError.validation(parameter: "map", "map names with a schema are 1 to 256 characters of A-Z a-z 0-9 _ . : ~ -, starting with a letter, a digit or _")
        }
        var reader = try BodyReader(try call.requireBody())
        let enforcementText = reader.string("enforcement", required: true, check: TextRules.oneOf(SchemaEnforcement.allCases.map(\.rawValue)))
        var canonical: String?
        if let schemaValue = reader.value("schema", required: true) {
            do {
                canonical = try MapSchema.compile(schemaValue).canonicalJSON
            } catch {
                for problem in error.problems { reader.add(FieldProblem(pointer: "/schema" + problem.pointer, problem.message)) }
            }
        }
        // What GET returns may come back whole (see ReadOnlyMembers).
        let readOnly = ReadOnlyMembers(["tenant_id", "map", "version", "created_at"], instants: ["created_at"], from: &reader)
        try reader.finish()
        guard let enforcementText, let enforcement = SchemaEnforcement(rawValue: enforcementText), let canonical else {
            throw APIError.validation(pointer: "", "enforcement and schema are required")
        }
        let ifMatch = call.headers[.ifMatch]
        try EntityTag.checkIfMatch(ifMatch)
        let ifNoneMatch = call.headers[.ifNoneMatch]
        if let ifNoneMatch, ifNoneMatch.trimmingCharacters(in: .whitespaces) != "*" {
            throw APIError.validation(parameter: "If-None-Match", "only * (create only) is supported")
        }
        return try await call.write { transaction in
            _ = try await TenantRoutes.lockLiveTenant(tenantID, transaction)
            let head = try await transaction.schemaHead(tenant: tenantID, map: map)
            var current: MapSchemaVersion?
            if let version = head?.current {
                current = try await transaction.schemaVersion(tenant: tenantID, map: map, version: version)
            }
            let tag = current.map { EntityTag.make($0.version) }
            guard EntityTag.ifMatchAllows(ifMatch, current: tag) else { throw EntityTag.preconditionFailed(current: tag) }
            if ifNoneMatch != nil, let tag { throw EntityTag.preconditionFailed(current: tag) }
            // Before the first version, only the path's tenant and map have a value.
            try readOnly.check(against: current.map { ReadOnlyMembers.representation(MapSchemaBody($0)) }
                ?? ["tenant_id": .string(tenantID.rawValue), "map": .string(map)])
            if let current, current.schemaJSON == canonical, current.enforcement == enforcement {
                return .json(.ok, MapSchemaBody(current), headers: [(.eTag, EntityTag.make(current.version))])
            }
            let version = MapSchemaVersion(
                tenant: tenantID, map: map, version: (head?.latest ?? 0) + 1, enforcement: enforcement,
                schemaJSON: canonical, createdAt: call.now)
            try await transaction.insertSchemaVersion(version)
            try await transaction.appendAudit(call.auditEvent(
                "schema.put", tenant: tenantID, targetType: "schema", targetID: map, targetVersion: version.version,
                details: ["enforcement": .string(enforcement.rawValue)]))
            try await transaction.publish(.schema(tenant: tenantID, map: map))
            var headers: [(HTTPField.Name, String)] = [(.eTag, EntityTag.make(version.version))]
            if current == nil { headers.append((.location, "/v1/tenants/\(tenantID.rawValue)/schemas/\(map)")) }
            return .json(current == nil ? .created : .ok, MapSchemaBody(version), headers: headers)
        }
    }

    static func get(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let map = call.pathParameter("map")
        guard TextRules.isMapName(map), try await call.store.tenant(id: tenantID) != nil,
              let current = try await call.store.currentSchema(tenant: tenantID, map: map)
        else { throw APIError.notFound("tenant \(tenantID) has no schema for map \(map.prefix(256))") }
        return .json(.ok, MapSchemaBody(current), headers: [(.eTag, EntityTag.make(current.version))])
    }

    static func delete(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let map = call.pathParameter("map")
        guard TextRules.isMapName(map) else { throw APIError.notFound("tenant \(tenantID) has no schema for map \(map.prefix(256))") }
        let ifMatch = call.headers[.ifMatch]
        try EntityTag.checkIfMatch(ifMatch)
        return try await call.write { transaction in
            _ = try await TenantRoutes.lockLiveTenant(tenantID, transaction)
            guard let current = try await transaction.schemaHead(tenant: tenantID, map: map)?.current else {
                throw APIError.notFound("tenant \(tenantID) has no schema for map \(map)")
            }
            let tag = EntityTag.make(current)
            guard EntityTag.ifMatchAllows(ifMatch, current: tag) else { throw EntityTag.preconditionFailed(current: tag) }
            try await transaction.clearCurrentSchema(tenant: tenantID, map: map)
            try await transaction.appendAudit(call.auditEvent(
                "schema.delete", tenant: tenantID, targetType: "schema", targetID: map, targetVersion: current))
            try await transaction.publish(.schema(tenant: tenantID, map: map))
            return .noContent()
        }
    }

    static func list(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["limit", "cursor"])
        let tenantID = try call.tenantID()
        let limit = try call.limit()
        let filters = "schemas|\(tenantID)"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        guard try await call.store.tenant(id: tenantID) != nil else { throw APIError.notFound("no tenant \(tenantID)") }
        let page = try await call.store.currentSchemas(tenant: tenantID, after: after, limit: limit)
        return .json(.ok, ListBody(items: page.items.map(MapSchemaBody.init), next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }

    static func versions(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["limit", "cursor"])
        let tenantID = try call.tenantID()
        let map = call.pathParameter("map")
        let limit = try call.limit()
        let filters = "schema-versions|\(tenantID)|\(map)"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        guard TextRules.isMapName(map), try await call.store.tenant(id: tenantID) != nil else {
            throw APIError.notFound("tenant \(tenantID) never had a schema for map \(map.prefix(256))")
        }
        let page = try await call.store.schemaVersions(tenant: tenantID, map: map, after: after, limit: limit)
        if page.items.isEmpty, after == nil {
            throw APIError.notFound("tenant \(tenantID) never had a schema for map \(map)")
        }
        return .json(.ok, ListBody(items: page.items.map(MapSchemaBody.init), next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }

    static func version(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let map = call.pathParameter("map")
        let versionText = call.pathParameter("version")
        guard TextRules.isMapName(map), let number = Int32(versionText), number >= 1,
              let version = try await call.store.schemaVersion(tenant: tenantID, map: map, version: Int(number))
        else { throw APIError.notFound("tenant \(tenantID) has no version \(versionText.prefix(16)) of the schema of map \(map.prefix(256))") }
        return .json(.ok, MapSchemaBody(version))
    }
}
