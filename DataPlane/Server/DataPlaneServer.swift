import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// The HTTP and WebSocket front of a data-plane node (protocol.md §6.1, §7):
/// WebSocket upgrades on `/`, `/ws` and `/t/{tenantID}/ws`; `GET /health`, `GET /ready`,
/// `GET /metrics`; `POST /sync`.
public struct DataPlaneServer: Sendable {
    let services: DataPlaneServices
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry

    public init(services: DataPlaneServices, readiness: Readiness) {
        self.services = services
        self.readiness = readiness
        self.registry = MetricsBootstrap.prometheusRegistry()
    }

    /// The Hummingbird application, ready to run as a service. `onBound` receives the port
    /// actually bound (useful with port 0).
    public func application(onBound: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemDetailsMiddleware())
        let services = self.services
        let readiness = self.readiness
        let registry = self.registry
        router.get("/health") { _, _ -> Response in
            Self.json(["status": "ok", "nodeId": services.configuration.nodeId])
        }
        router.get("/ready") { _, _ -> Response in
            let health = await services.durability.health()
            let loaded = readiness.isLoaded
            if loaded, health.isHealthy {
                return Self.json(["status": "ready", "pendingWrites": String(health.pending)])
            }
            let detail = !loaded ? "partitions are still loading" : "storage is unreachable (\(health.lastError ?? "unknown error")); \(health.pending) writes are waiting"
            throw ProblemDetails(.serviceUnavailable, kind: "not-ready", title: "Service Unavailable", detail: detail)
        }
        router.get("/metrics") { _, _ -> Response in
            services.metrics.writeBehindPending.record(await services.durability.health().pending)
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16 * 1024)
            registry.emit(into: &buffer)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        let sync = HTTPSyncEndpoint(services: services)
        router.post("/sync") { request, context in
            try await sync.handle(request, context: context)
        }

        let connection = ClientConnection(services: services)
        let maxFrame = services.configuration.maxFrameBytes
        // validateUTF8: a text frame that is not UTF-8 fails the connection with 1007 (RFC 6455
        // §8.1) instead of reaching us with its bad bytes silently replaced by U+FFFD.
        let server = HTTPServerBuilder.http1WebSocketUpgrade(
            configuration: .init(ws: .init(
                maxFrameSize: maxFrame, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: .seconds(5), validateUTF8: true))
        ) { request, channel, _ in
            guard let route = WebSocketRoute(path: request.path ?? "/") else { return .dontUpgrade }
            let requestId = UUIDText.random()
            return .upgrade([:]) { inbound, outbound, _ in
                await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
                    await connection.run(inbound: inbound, writer: outbound, channel: channel, pathTenant: route.tenant, requestId: requestId)
                }
            }
        }
        let configuration = services.configuration
        return Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "topgun-data-plane"),
            onServerRunning: { channel in
                await onBound(channel.localAddress?.port ?? configuration.port)
            },
            logger: services.logger
        )
    }

    static func json(_ fields: [String: String]) -> Response {
        let body = "{" + fields.sorted { $0.key < $1.key }.map { "\(ProblemDetails.quote($0.key)):\(ProblemDetails.quote($0.value))" }.joined(separator: ",") + "}"
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The WebSocket paths: `/`, `/ws`, and `/t/{tenantID}/ws` (whose tenant the token must match).
struct WebSocketRoute: Equatable {
    var tenant: TenantID?

    init?(path: String) {
        let path = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        if path == "/" || path == "/ws" || path == "/ws/" {
            tenant = nil
            return
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0] == "t", parts[2] == "ws", !parts[1].isEmpty else { return nil }
        tenant = TenantID(String(parts[1]))
    }
}

/// Whether the node has loaded its partitions (part of `/ready`).
public final class Readiness: Sendable {
    private let loaded = Atomic<Bool>(false)
    public init() {}
    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }
    public func markLoaded() { loaded.store(true, ordering: .releasing) }
}
