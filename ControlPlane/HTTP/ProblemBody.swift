import Foundation
import HTTPTypes
import Metadata

/// Renders an `APIError` as an RFC 9457 `application/problem+json` response.
enum ProblemBody {
    struct Body: Encodable {
        struct Item: Encodable {
            var pointer: String?
            var parameter: String?
            var detail: String
        }

        var type: String
        var title: String
        var status: Int
        var detail: String?
        var instance: String?
        var request_id: String?
        var errors: [Item]?
        var missing_scopes: [String]?
        var conflicting_field: String?
        var limit_bytes: Int?
        var retry_after: Int?
    }

    static func response(_ error: APIError, requestID: String, path: String?) -> APIResponse {
        let items = error.errors.map { problem -> Body.Item in
            let detail = String(problem.detail.prefix(500))
            switch problem.location {
            case .pointer(let pointer): return Body.Item(pointer: String(pointer.prefix(2048)), detail: detail)
            case .parameter(let name): return Body.Item(parameter: String(name.prefix(100)), detail: detail)
            }
        }
        let body = Body(
            type: error.kind.typeURI,
            title: error.kind.title,
            status: error.kind.status.code,
            detail: String(error.detail.prefix(2000)),
            // An over-long path is left out rather than cut inside a percent escape.
            instance: path.flatMap { $0.utf8.count <= 2048 ? $0 : nil },
            request_id: requestID,
            errors: items.isEmpty ? nil : items,
            missing_scopes: error.missingScopes.isEmpty ? nil : error.missingScopes.sorted().map(\.rawValue),
            conflicting_field: error.conflictingField,
            limit_bytes: error.limitBytes,
            retry_after: error.retryAfter)
        var headers: [(HTTPField.Name, String)] = [(.contentType, "application/problem+json")]
        headers += error.headers
        if let retryAfter = error.retryAfter { headers.append((.retryAfter, String(max(1, retryAfter)))) }
        return APIResponse(status: error.kind.status, headers: headers, body: JSONBody.encode(body))
    }
}

/// Metadata store errors as API errors.
enum StoreErrors {
    static func apiError(_ error: MetadataError) -> APIError {
        switch error {
        case .notFound(let detail): return .notFound(detail)
        case .conflict(let detail): return .conflict(detail)
        case .invalid(let detail): return .validation(pointer: "", detail)
        case .unavailable(let detail):
            var error = APIError(.serviceUnavailable, "the metadata store is unavailable: \(detail)")
            error.retryAfter = 5
            return error
        }
    }
}
