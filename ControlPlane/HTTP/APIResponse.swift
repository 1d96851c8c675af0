import Foundation
import HTTPTypes
import Hummingbird
import Metadata
import NIOCore

/// A response as bytes, before it becomes a Hummingbird `Response`: the form idempotent
/// replays store and send again byte for byte.
public struct APIResponse: Sendable {
    public var status: HTTPResponse.Status
    /// Headers that describe the result (stored with an idempotent response).
    public var headers: [(HTTPField.Name, String)]
    public var body: [UInt8]

    public init(status: HTTPResponse.Status, headers: [(HTTPField.Name, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON body (`application/json`).
    static func json(_ status: HTTPResponse.Status, _ value: some Encodable, headers: [(HTTPField.Name, String)] = []) -> APIResponse {
        APIResponse(status: status, headers: [(.contentType, "application/json")] + headers, body: JSONBody.encode(value))
    }

    static func noContent(headers: [(HTTPField.Name, String)] = []) -> APIResponse {
        APIResponse(status: .noContent, headers: headers)
    }

    var stored: StoredResponse {
        StoredResponse(status: status.code, headers: headers.map { StoredHeader(name: $0.0.rawName, value: $0.1) }, body: body)
    }

    init(_ stored: StoredResponse) {
        self.status = HTTPResponse.Status(code: stored.status)
        self.headers = stored.headers.compactMap { header in HTTPField.Name(header.name).map { ($0, header.value) } }
        self.body = stored.body
    }

    func response(extraHeaders: [(HTTPField.Name, String)]) -> Response {
        var fields = HTTPFields()
        for (name, value) in headers + extraHeaders { fields.append(HTTPField(name: name, value: value)) }
        if body.isEmpty {
            return Response(status: status, headers: fields)
        }
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// JSON encoding of response bodies: `snake_case` members as the `Codable` types name them,
/// optionals left out when nil, no escaped slashes.
enum JSONBody {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        // The types encoded here are plain structs of strings and numbers; encoding cannot fail.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
    static let rateLimit = HTTPField.Name("RateLimit")!
    static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    static let link = HTTPField.Name("Link")!
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
}
