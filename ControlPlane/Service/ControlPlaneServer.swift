import Foundation
import HTTPEdge
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metadata
import NIOCore

/// What a control-plane server needs: where to listen, the metadata store, the bootstrap
/// admin token and the request budget per admin token.
public struct ControlPlaneConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// The configured token with every scope (`TOPGUN_ADMIN_TOKEN`); nil: only stored tokens.
    public var bootstrapToken: String?
    public var requestsPerWindow: Int
    public var windowSeconds: Int

    public init(host: String = "127.0.0.1", port: Int = 8081, bootstrapToken: String?, requestsPerWindow: Int = 600, windowSeconds: Int = 60) {
        self.host = host
        self.port = port
        self.bootstrapToken = bootstrapToken
        self.requestsPerWindow = requestsPerWindow
        self.windowSeconds = windowSeconds
    }
}

/// The control plane's HTTP application: the contract's operations under `/v1`, plus
/// `/health`, `/openapi.yaml` and `/docs`.
public struct ControlPlaneServer: Sendable {
    public let configuration: ControlPlaneConfiguration
    let endpoint: Endpoint
    let documentation: APIDocumentation
    let logger: Logger

    public init(configuration: ControlPlaneConfiguration, store: any ControlPlaneStore, logger: Logger = Logger(label: "topgun.control-plane")) throws {
        if let token = configuration.bootstrapToken, token.utf8.count < 32 {
            throw MetadataError.invalid("the bootstrap admin token must be at least 32 characters")
        }
        self.configuration = configuration
        self.logger = logger
        self.documentation = try APIDocumentation()
        self.endpoint = Endpoint(
            store: store,
            authenticator: AdminAuthenticator(store: store, bootstrapToken: configuration.bootstrapToken),
            limiter: RequestRateLimiter(quota: configuration.requestsPerWindow, window: configuration.windowSeconds),
            logger: logger,
            now: { Date() })
    }

    /// The Hummingbird application; `onServerRunning` receives the bound port (for `port: 0`).
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            server: Self.server(limits: .standard),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "topgun-control-plane"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// HTTP/1 whose parser refusals are answered with the contract's problems instead of a
    /// bare `400` (`MalformedRequestResponder`).
    static func server(limits: HTTPRequestLimits) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            HTTP1EdgeChannel(HTTP1Channel(responder: responder, configuration: .init(httpDecoderConfiguration: limits.decoderConfiguration))) { _ in
                [MalformedRequestResponder(limits: limits, render: MalformedRequestProblem.render)]
            }
        }
    }

    /// Every route; public so tests can drive it without sockets.
    public func router() -> Router<ControlPlaneRequestContext> {
        let router = Router(context: ControlPlaneRequestContext.self)
        let endpoint = endpoint
        let routes = Self.routes
        var methodsByPath: [String: Set<String>] = ["/health": ["GET"], "/openapi.yaml": ["GET"], "/docs": ["GET"]]
        for route in routes { methodsByPath[route.path, default: []].insert(route.operation.method.rawValue) }
        router.add(middleware: FallbackProblemMiddleware(methodsByPath: methodsByPath))
        for route in routes {
            let handler = route.handler
            let operation = route.operation
            router.on(RouterPath(route.path), method: route.operation.method) { request, context in
                await endpoint.serve(request, context, operation, handler)
            }
        }
        let documentation = documentation
        let store = endpoint.store
        router.get("/health") { request, _ in
            let requestID = Endpoint.requestID(request.headers[.requestID])
            do {
                // Any query proves the store answers; this id names no tenant.
                _ = try await store.tenant(id: "tn_healthcheckaaaaaaaaaaa")
                struct Health: Encodable { var status = "ok"; var metadata_store = "ok" }
                return APIResponse.json(.ok, Health()).response(extraHeaders: [(.requestID, requestID)])
            } catch {
                var problem = APIError(.serviceUnavailable, "the metadata store does not answer")
                problem.retryAfter = 5
                return ProblemBody.response(problem, requestID: requestID, path: "/health").response(extraHeaders: [(.requestID, requestID)])
            }
        }
        router.get("/openapi.yaml") { request, _ in
            APIResponse(status: .ok, headers: [(.contentType, "application/yaml")], body: documentation.yaml)
                .response(extraHeaders: [(.requestID, Endpoint.requestID(request.headers[.requestID]))])
        }
        router.get("/docs") { request, _ in
            APIResponse(status: .ok, headers: [
                (.contentType, "text/html; charset=utf-8"),
                (.contentSecurityPolicy, "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"),
            ], body: documentation.html)
            .response(extraHeaders: [(.requestID, Endpoint.requestID(request.headers[.requestID]))])
        }
        return router
    }

    struct Route: Sendable {
        var path: String
        var operation: Operation
        var handler: @Sendable (APICall) async throws -> APIResponse
    }

    /// The contract's `/v1` operations (a test checks this table against `openapi.yaml`).
    static let routes: [Route] = {
        func route(_ method: HTTPRequest.Method, _ path: String, _ id: String, _ scope: AdminScope, _ handler: @escaping @Sendable (APICall) async throws -> APIResponse) -> Route {
            Route(path: path, operation: Operation(id: id, method: method, scope: scope, acceptsBody: [.post, .put, .patch].contains(method)), handler: handler)
        }
        let tenant = "/v1/tenants/:tenant_id"
        return [
            route(.post, "/v1/tenants", "createTenant", .tenantsWrite, TenantRoutes.create),
            route(.get, "/v1/tenants", "listTenants", .tenantsRead, TenantRoutes.list),
            route(.get, tenant, "getTenant", .tenantsRead, TenantRoutes.get),
            route(.patch, tenant, "updateTenant", .tenantsWrite, TenantRoutes.update),
            route(.delete, tenant, "deleteTenant", .tenantsWrite, TenantRoutes.delete),
            route(.post, tenant + "/suspend", "suspendTenant", .tenantsWrite, TenantRoutes.suspend),
            route(.post, tenant + "/resume", "resumeTenant", .tenantsWrite, TenantRoutes.resume),
            route(.post, tenant + "/keys", "createSigningKey", .keysWrite, SigningKeyRoutes.create),
            route(.get, tenant + "/keys", "listSigningKeys", .keysRead, SigningKeyRoutes.list),
            route(.get, tenant + "/keys/:kid", "getSigningKey", .keysRead, SigningKeyRoutes.get),
            route(.delete, tenant + "/keys/:kid", "revokeSigningKey", .keysWrite, SigningKeyRoutes.revoke),
            route(.get, tenant + "/quotas", "getQuotas", .tenantsRead, QuotaRoutes.get),
            route(.put, tenant + "/quotas", "replaceQuotas", .quotasWrite, QuotaRoutes.replace),
            route(.delete, tenant + "/quotas", "resetQuotas", .quotasWrite, QuotaRoutes.reset),
            route(.get, tenant + "/schemas", "listMapSchemas", .tenantsRead, MapSchemaRoutes.list),
            route(.put, tenant + "/schemas/:map", "putMapSchema", .schemasWrite, MapSchemaRoutes.put),
            route(.get, tenant + "/schemas/:map", "getMapSchema", .tenantsRead, MapSchemaRoutes.get),
            route(.delete, tenant + "/schemas/:map", "deleteMapSchema", .schemasWrite, MapSchemaRoutes.delete),
            route(.get, tenant + "/schemas/:map/versions", "listMapSchemaVersions", .tenantsRead, MapSchemaRoutes.versions),
            route(.get, tenant + "/schemas/:map/versions/:version", "getMapSchemaVersion", .tenantsRead, MapSchemaRoutes.version),
            route(.get, tenant + "/usage", "getTenantUsage", .usageRead, UsageRoutes.series),
            route(.get, "/v1/usage/export", "exportUsage", .usageRead, UsageRoutes.export),
            route(.get, "/v1/audit", "listAuditEvents", .auditRead, AuditRoutes.list),
            route(.post, "/v1/admin-tokens", "createAdminToken", .adminTokensWrite, AdminTokenRoutes.create),
            route(.get, "/v1/admin-tokens", "listAdminTokens", .adminTokensWrite, AdminTokenRoutes.list),
            route(.get, "/v1/admin-tokens/:token_id", "getAdminToken", .adminTokensWrite, AdminTokenRoutes.get),
            route(.delete, "/v1/admin-tokens/:token_id", "revokeAdminToken", .adminTokensWrite, AdminTokenRoutes.revoke),
        ]
    }()

    /// `(method, path in the contract's {param} form, operationId)` of every `/v1` route.
    public static var operationTable: [(method: String, path: String, operationID: String)] {
        routes.map { route in
            let path = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return (route.operation.method.rawValue, "/" + path, route.operation.id)
        }
    }
}

/// Errors that escape the routes as problem+json too, so a client never sees an empty or
/// HTML error: a path the contract defines with another method is a 405 naming the allowed
/// ones (whatever the method, `QUERY` and `TRACE` included); an unknown path a 404.
struct FallbackProblemMiddleware: RouterMiddleware {
    typealias Context = ControlPlaneRequestContext

    /// Path templates (`/v1/tenants/:tenant_id`) and their methods.
    let methodsByPath: [String: Set<String>]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let requestID = Endpoint.requestID(request.headers[.requestID])
            var apiError: APIError
            if let httpError = error as? HTTPError {
                switch httpError.status {
                case .notFound, .methodNotAllowed:
                    if let allowed = allowedMethods(request.uri.path), !allowed.contains(request.method.rawValue) {
                        let allow = allowed.sorted().joined(separator: ", ")
                        apiError = APIError(.methodNotAllowed, "\(request.method.rawValue.prefix(20)) is not defined for this path; allowed: \(allow)")
                        apiError.headers.append((.allow, allow))
                    } else {
                        apiError = .notFound("no such resource: \(request.uri.path.prefix(200))")
                    }
                case .contentTooLarge: apiError = Endpoint.tooLarge()
                case .badRequest: apiError = .validation(pointer: "", httpError.body ?? "malformed request")
                default: apiError = APIError(.internalError, "an unexpected error occurred")
                }
            } else {
                apiError = APIError(.internalError, "an unexpected error occurred")
            }
            return ProblemBody.response(apiError, requestID: requestID, path: request.uri.path).response(extraHeaders: [(.requestID, requestID)])
        }
    }

    /// The methods of the template `path` matches, nil if none does.
    func allowedMethods(_ path: String) -> Set<String>? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, methods) in methodsByPath {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            if zip(parts, segments).allSatisfy({ $0.hasPrefix(":") ? !$1.isEmpty : $0 == $1 }) { return methods }
        }
        return nil
    }
}
