import Foundation
import HTTPEdge
import HTTPTypes
import Hummingbird
import NIOCore
import TopGunCore

/// An RFC 9457 problem (`application/problem+json`), with a stable `type` URI per kind.
public struct ProblemDetails: Error, Sendable {
    public var status: HTTPResponse.Status
    /// The last path segment of the `type` URI (`https://topgun.dev/problems/<kind>`).
    public var kind: String
    public var title: String
    public var detail: String?
    public var extra: [String: String]

    public init(_ status: HTTPResponse.Status, kind: String, title: String, detail: String? = nil, extra: [String: String] = [:]) {
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.extra = extra
    }

    public static let typeBase = "https://topgun.dev/problems/"

    public func response(requestId: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body(requestId: requestId))))
    }

    /// The problem as JSON.
    public func body(requestId: String?) -> String {
        var object: [String: String] = extra
        object["type"] = Self.typeBase + kind
        object["title"] = title
        if let detail { object["detail"] = detail }
        if let requestId { object["requestId"] = requestId }
        var body = "{"
        body += object.sorted { $0.key < $1.key }.map { "\(Self.quote($0.key)):\(Self.quote($0.value))" }.joined(separator: ",")
        body += ",\"status\":\(status.code)}"
        return body
    }

    /// The problem for a request the HTTP/1 parser refused (`MalformedRequestResponder`
    /// answers it before any route runs): `431`, `501` or `400`.
    static func malformedRequest(_ refusal: MalformedRequest) -> ProblemResponse {
        let kind =
            switch refusal.kind {
            case .headerFieldsTooLarge: "request-header-fields-too-large"
            case .unknownMethod: "not-implemented"
            case .malformed: "malformed-request"
            }
        let status = HTTPResponse.Status(code: Int(refusal.status.code), reasonPhrase: refusal.status.reasonPhrase)
        let requestId = UUIDText.random()
        let problem = ProblemDetails(status, kind: kind, title: status.reasonPhrase, detail: refusal.detail)
        return ProblemResponse(headers: [("X-Request-Id", requestId)], body: problem.body(requestId: requestId))
    }

    /// The answer to a connection past the node's capacity (`CapacityRefusal`): `503`, to be
    /// tried again shortly or on another node.
    static func capacityReached(limit: Int) -> ProblemResponse {
        let requestId = UUIDText.random()
        let problem = ProblemDetails(
            .serviceUnavailable, kind: "connection-capacity", title: "Service Unavailable",
            detail: "this node holds as many client connections as it can (\(limit)); try again later or connect to another node")
        return ProblemResponse(headers: [("X-Request-Id", requestId), ("Retry-After", "1")], body: problem.body(requestId: requestId))
    }

    static func quote(_ text: String) -> String {
        JavaScriptText.jsonString(text)
    }
}

/// Turns every error a route throws into problem+json, so no client ever sees an HTML or
/// empty error body; unexpected errors become a 500 that names the request id.
public struct ProblemDetailsMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestId = request.headers[.requestID] ?? UUIDText.random()
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = requestId
            return response
        } catch let problem as ProblemDetails {
            var response = problem.response(requestId: requestId)
            response.headers[.requestID] = requestId
            return response
        } catch let error as HTTPError {
            let kind: String
            switch error.status {
            case .notFound: kind = "not-found"
            case .methodNotAllowed: kind = "method-not-allowed"
            case .contentTooLarge: kind = "payload-too-large"
            default: kind = "http-\(error.status.code)"
            }
            var response = ProblemDetails(error.status, kind: kind, title: error.status.reasonPhrase, detail: error.body).response(requestId: requestId)
            response.headers[.requestID] = requestId
            return response
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "request_id": .string(requestId)])
            var response = ProblemDetails(.internalServerError, kind: "internal-error", title: "Internal Server Error", detail: "logged with request id \(requestId)").response(requestId: requestId)
            response.headers[.requestID] = requestId
            return response
        }
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
}

enum UUIDText {
    static func random() -> String { UUID().uuidString.lowercased() }
}
