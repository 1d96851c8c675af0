import TopGunCore
import Foundation
import HTTPTypes
import Hummingbird
import Metadata
import Synchronization
import Tenancy

/// Marks whether an idempotent request's response was stored inside its own transaction.
final class IdempotencyTicket: Sendable {
    let key: IdempotencyKey
    let expiresAt: Date
    private let completed = Mutex(false)

    init(key: IdempotencyKey, expiresAt: Date) {
        self.key = key
        self.expiresAt = expiresAt
    }

    var isCompleted: Bool { completed.withLock { $0 } }
    func markCompleted() { completed.withLock { $0 = true } }
}

/// One authenticated API request as the resource handlers see it: who calls, the parsed
/// body, path and query parameters, and the means to change the store with the request's
/// audit event and idempotent response in the same transaction.
public struct APICall: Sendable {
    public let requestID: String
    public let caller: AdminCaller
    public let now: Date
    public let path: String
    let parameters: [String: String]
    let query: [(String, String)]
    let headers: HTTPFields
    /// The body as JSON, nil when the request had none.
    let body: JSONValue?
    let idempotency: IdempotencyTicket?
    let store: any ControlPlaneStore

    // MARK: Parameters

    func pathParameter(_ name: String) -> String {
        parameters[name] ?? ""
    }

    /// The tenant id in the path; an id of the wrong form names nothing (404).
    func tenantID() throws(APIError) -> TenantID {
        let text = pathParameter("tenant_id")
        guard TextRules.isIdentifier(text, prefix: "tn_", count: 20) else { throw .notFound("no tenant \(text.prefix(64))") }
        return TenantID(text)
    }

    /// The single value of a query parameter; a repeated parameter is a 400.
    func queryValue(_ name: String) throws(APIError) -> String? {
        let values = query.filter { $0.0 == name }.map(\.1)
        guard values.count <= 1 else { throw .validation(parameter: name, "must be given at most once") }
        return values.first
    }

    /// Refuses query parameters the operation does not define, so a misspelt filter is not
    /// silently ignored.
    func allowOnlyQuery(_ names: Set<String>) throws(APIError) {
        let unknown = Set(query.map(\.0)).subtracting(names).sorted()
        guard unknown.isEmpty else {
            throw .validation(unknown.map { FieldProblem(parameter: $0, "unknown query parameter") })
        }
    }

    func limit(default defaultValue: Int = ControlPlaneLimits.defaultPageSize, maximum: Int = ControlPlaneLimits.maximumPageSize) throws(APIError) -> Int {
        guard let text = try queryValue("limit") else { return defaultValue }
        guard let value = Int(text), (1...maximum).contains(value) else {
            throw .validation(parameter: "limit", "must be an integer from 1 to \(maximum)")
        }
        return value
    }

    func enumQuery<Value: RawRepresentable>(_ name: String, _ type: Value.Type) throws(APIError) -> Value? where Value.RawValue == String {
        guard let text = try queryValue(name) else { return nil }
        guard let value = Value(rawValue: text) else { throw .validation(parameter: name, "is not a valid value") }
        return value
    }

    func timeQuery(_ name: String, required: Bool) throws(APIError) -> Date? {
        guard let text = try queryValue(name) else {
            if required { throw .validation(parameter: name, "is required (an RFC 3339 instant)") }
            return nil
        }
        guard let date = RFC3339.parse(text) else { throw .validation(parameter: name, "must be an RFC 3339 instant, e.g. 2025-06-01T10:00:00Z") }
        return date
    }

    /// The body, required to be a JSON object.
    func requireBody() throws(APIError) -> JSONValue {
        guard let body else { throw .validation(pointer: "", "a JSON body is required") }
        return body
    }

    // MARK: Changes

    /// Runs `change` in one store transaction; if the request carries an `Idempotency-Key`,
    /// its response is stored in the same transaction.
    func write(_ change: @Sendable @escaping (any MetadataTransaction) async throws -> APIResponse) async throws -> APIResponse {
        let ticket = idempotency
        let response = try await store.write { transaction in
            let response = try await change(transaction)
            if let ticket, response.status.kind == .successful {
                try await transaction.completeIdempotencyKey(ticket.key, with: response.stored, expiresAt: ticket.expiresAt)
            }
            return response
        }
        if response.status.kind == .successful { ticket?.markCompleted() }
        return response
    }

    /// An audit event for this request (actor, time, request id and idempotency key filled in).
    func auditEvent(
        _ action: String, tenant: TenantID?, targetType: String, targetID: String, targetVersion: Int? = nil,
        details: JSONObject = [:]
    ) -> AuditEvent {
        AuditEvent(
            id: IDGenerator.auditEventID(), time: now, actor: caller.actor, action: action, tenant: tenant,
            targetType: targetType, targetID: targetID, targetVersion: targetVersion, requestID: requestID,
            idempotencyKey: idempotency?.key.key, detailsJSON: JSONValue.object(details).canonicalText)
    }
}
