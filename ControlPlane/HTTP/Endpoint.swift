import TopGunCore
import Crypto
import Foundation
import HTTPEdge
import HTTPTypes
import Hummingbird
import Logging
import Metadata
import NIOCore

/// What an operation needs from the request pipeline.
struct Operation: Sendable {
    var id: String
    var method: HTTPRequest.Method
    /// The scope the admin token must have.
    var scope: AdminScope
    /// Whether the operation reads a JSON body (POST, PUT, PATCH).
    var acceptsBody: Bool
}

/// The conventions every `/v1` operation shares, applied in this order: request id,
/// authentication (401), rate limit (429), scope (403), body limits and media type (413,
/// 415), JSON parsing, `Idempotency-Key` (replay, 409, 422), then the operation; errors
/// become problem+json; idempotent results are stored.
struct Endpoint: Sendable {
    let store: any ControlPlaneStore
    let authenticator: AdminAuthenticator
    let limiter: RequestRateLimiter
    let logger: Logger
    let now: @Sendable () -> Date

    static let rateLimitedPolicyName = "admin-token"
    static let anonymousPolicyName = "client-address"

    func serve(
        _ request: Request, _ context: ControlPlaneRequestContext, _ operation: Operation,
        _ handler: @Sendable @escaping (APICall) async throws -> APIResponse
    ) async -> Response {
        let requestID = Self.requestID(request.headers[.requestID])
        // Whole microseconds: what both stores keep, so an instant reads back as it was written.
        let now = Date(timeIntervalSince1970: (now().timeIntervalSince1970 * 1_000_000).rounded(.down) / 1_000_000)
        var logger = logger
        logger[metadataKey: "request_id"] = "\(requestID)"
        logger[metadataKey: "operation"] = "\(operation.id)"
        var request = request
        var rateHeaders: [(HTTPField.Name, String)] = []
        var ticket: IdempotencyTicket?
        do {
            // Authentication, with the anonymous budget charged on failure.
            let caller: AdminCaller
            do {
                caller = try await authenticator.authenticate(authorization: request.headers[.authorization], now: now)
            } catch let refusal as APIError where refusal.kind == .unauthorized {
                let address = context.remoteAddress?.ipAddress ?? "unknown"
                let decision = await limiter.charge("address:" + address, now: now)
                if !decision.allowed {
                    throw Self.rateLimited(decision, policy: Self.anonymousPolicyName, quota: limiter.quota, window: limiter.window)
                }
                throw refusal
            }
            logger[metadataKey: "actor"] = "\(caller.actor)"
            let decision = await limiter.charge("actor:" + caller.actor, now: now)
            rateHeaders = Self.rateHeaders(decision, policy: Self.rateLimitedPolicyName, quota: limiter.quota, window: limiter.window)
            guard decision.allowed else {
                throw Self.rateLimited(decision, policy: Self.rateLimitedPolicyName, quota: limiter.quota, window: limiter.window)
            }
            guard caller.scopes.contains(operation.scope) else {
                var error = APIError(.forbidden, "this operation needs the scope \(operation.scope.rawValue)")
                error.missingScopes = [operation.scope]
                throw error
            }

            // The body: limits and media type before any parsing.
            var bodyBytes: [UInt8] = []
            var body: JSONValue?
            if operation.acceptsBody {
                bodyBytes = try await Self.collectBody(&request, context: context)
                if !bodyBytes.isEmpty {
                    guard Self.isJSON(request.headers[.contentType]) else {
                        throw APIError(.unsupportedMediaType, "the body must be application/json")
                    }
                }
            } else if let length = request.headers[.contentLength], let count = Int(length), count > 0 {
                // Operations without a body ignore one, but not a huge one.
                guard count <= ControlPlaneLimits.maximumBodyBytes else { throw Self.tooLarge() }
            }

            // Parsed once: the idempotency fingerprint hashes the canonical text (so white space
            // and member order do not matter), and a body that is not JSON is refused after the
            // claim, so that its 400 is stored and replayed like any answer.
            let parsedBody: Result<JSONValue, APIError>? = bodyBytes.isEmpty ? nil : Result { () throws(APIError) in try JSONValue.parse(bodyBytes) }

            // Idempotency: claim the key before the operation runs.
            if operation.method == .post, let keyText = request.headers[.idempotencyKey] {
                guard (1...255).contains(keyText.utf8.count), keyText.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                    throw APIError.validation(parameter: "Idempotency-Key", "must be 1 to 255 printable ASCII characters")
                }
                let canonical = (try? parsedBody?.get()).map { Array($0.canonicalText.utf8) } ?? bodyBytes
                let fingerprint = IdempotentRequest(
                    method: "POST", path: request.uri.path, bodyHash: Array(SHA256.hash(data: canonical)))
                let key = IdempotencyKey(scope: caller.actor, key: keyText)
                switch try await store.claimIdempotencyKey(key, for: fingerprint, now: now, staleAfter: ControlPlaneLimits.idempotencyStaleAfter) {
                case .completed(let stored):
                    logger.info("idempotent replay", metadata: ["idempotency_key": "\(keyText)"])
                    return APIResponse(stored).response(
                        extraHeaders: [(.requestID, requestID), (.idempotentReplayed, "true")] + rateHeaders)
                case .inProgress:
                    var error = APIError(.idempotencyKeyInUse, "a request with Idempotency-Key \(keyText) is still being processed; retry shortly")
                    error.retryAfter = 1
                    throw error
                case .mismatch:
                    throw APIError(.idempotencyKeyReused, "Idempotency-Key \(keyText) was used with another method, path or body")
                case .claimed:
                    ticket = IdempotencyTicket(key: key, expiresAt: now.addingTimeInterval(ControlPlaneLimits.idempotencyLifetime))
                }
            }
            body = try parsedBody?.get()

            let call = APICall(
                requestID: requestID, caller: caller, now: now, path: request.uri.path,
                parameters: Self.parameters(context), query: Self.query(request), headers: request.headers,
                body: body, idempotency: ticket, store: store)
            let response = try await handler(call)
            try await finishIdempotency(ticket, response)
            logger.info("request", metadata: ["status": "\(response.status.code)"])
            return response.response(extraHeaders: [(.requestID, requestID)] + rateHeaders)
        } catch {
            let apiError = Self.apiError(error, logger: logger)
            let response = ProblemBody.response(apiError, requestID: requestID, path: request.uri.path)
            try? await finishIdempotency(ticket, response)
            if apiError.kind == .internalError {
                logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            } else {
                logger.info("request refused", metadata: ["status": "\(response.status.code)", "problem": "\(apiError.kind.rawValue)"])
            }
            // The 429 carries its own rate headers; others get the caller's.
            let extra = apiError.kind == .rateLimited ? [] : rateHeaders
            return response.response(extraHeaders: [(.requestID, requestID)] + extra)
        }
    }

    /// Stores the response of an idempotent request that was not stored in its transaction,
    /// or frees the key when the response must not be replayed (refused before running, 5xx).
    private func finishIdempotency(_ ticket: IdempotencyTicket?, _ response: APIResponse) async throws {
        guard let ticket, !ticket.isCompleted else { return }
        let code = response.status.code
        let notStored: Set<Int> = [401, 403, 413, 415, 429]
        if code >= 500 || notStored.contains(code) {
            try await store.releaseIdempotencyKey(ticket.key)
        } else {
            try await store.completeIdempotencyKey(ticket.key, with: response.stored, expiresAt: ticket.expiresAt)
        }
        ticket.markCompleted()
    }

    // MARK: Helpers

    static func apiError(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as MetadataError: return StoreErrors.apiError(error)
        default: return APIError(.internalError, "an unexpected error occurred; it was logged with this request id")
        }
    }

    /// The caller's `X-Request-Id` when it is 1 to 128 of `A-Z a-z 0-9 . _ : -`, else a fresh UUID.
    static func requestID(_ header: String?) -> String {
        if let header, (1...128).contains(header.utf8.count),
           header.utf8.allSatisfy({ AdminTokenValue.isBase64URLByte($0) || $0 == 0x2E || $0 == 0x3A }) {
            return header
        }
        return UUID().uuidString.lowercased()
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json"
    }

    static func tooLarge() -> APIError {
        var error = APIError(.payloadTooLarge, "the body is larger than \(ControlPlaneLimits.maximumBodyBytes) bytes")
        error.limitBytes = ControlPlaneLimits.maximumBodyBytes
        return error
    }

    static func collectBody(_ request: inout Request, context: ControlPlaneRequestContext) async throws -> [UInt8] {
        if let length = request.headers[.contentLength], let count = Int(length), count > ControlPlaneLimits.maximumBodyBytes {
            throw tooLarge()
        }
        do {
            let buffer = try await request.collectBody(upTo: ControlPlaneLimits.maximumBodyBytes)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge()
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length to refuse up front: collecting stops at the limit.
            throw tooLarge()
        } catch {
            // A body that breaks HTTP/1.1 framing (a bad chunk size) is the client's error, not ours.
            guard let refusal = MalformedRequest(error, limits: .standard) else { throw error }
            throw APIError.validation(pointer: "", refusal.detail)
        }
    }

    static func rateHeaders(_ decision: RequestRateLimiter.Decision, policy: String, quota: Int, window: Int) -> [(HTTPField.Name, String)] {
        [
            (.rateLimitPolicy, "\"\(policy)\";q=\(quota);w=\(window)"),
            (.rateLimit, "\"\(policy)\";r=\(decision.remaining);t=\(decision.resetSeconds)"),
        ]
    }

    static func rateLimited(_ decision: RequestRateLimiter.Decision, policy: String, quota: Int, window: Int) -> APIError {
        var error = APIError(.rateLimited, "the request budget of \(quota) per \(window) s is spent; retry in \(decision.resetSeconds) s")
        error.retryAfter = decision.resetSeconds
        error.headers = rateHeaders(decision, policy: policy, quota: quota, window: window)
        return error
    }

    static func parameters(_ context: ControlPlaneRequestContext) -> [String: String] {
        var parameters: [String: String] = [:]
        for name in ["tenant_id", "kid", "map", "version", "token_id"] {
            if let value = context.parameters.get(name) { parameters[name] = String(value) }
        }
        return parameters
    }

    static func query(_ request: Request) -> [(String, String)] {
        request.uri.queryParameters.map { (String($0.key), String($0.value)) }
    }
}
