import Foundation
import HTTPEdge
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
    let configuration: DataPlaneConfiguration
    let durability: any DurabilityPipeline
    let metrics: DataPlaneMetrics
    let logger: Logger
    let connection: ClientConnection
    let sync: HTTPSyncEndpoint
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry
    /// On a node of a cluster: the `GET /cluster` document.
    let cluster: (@Sendable () async -> ClusterStatus)?
    /// The most client connections held at once (nil: no bound of ours).
    let capacity: ConnectionCapacity?

    public init(
        configuration: DataPlaneConfiguration, durability: any DurabilityPipeline, metrics: DataPlaneMetrics, logger: Logger,
        connection: ClientConnection, sync: HTTPSyncEndpoint, readiness: Readiness, cluster: (@Sendable () async -> ClusterStatus)? = nil,
        capacity: ConnectionCapacity? = nil
    ) {
        self.cluster = cluster
        self.capacity = capacity
        self.configuration = configuration
        self.durability = durability
        self.metrics = metrics
        self.logger = logger
        self.connection = connection
        self.sync = sync
        self.readiness = readiness
        self.registry = MetricsBootstrap.prometheusRegistry()
    }

    /// The Hummingbird application, ready to run as a service. `onBound` receives the port
    /// actually bound (useful with port 0).
    public func application(onBound: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemDetailsMiddleware())
        let (configuration, durability, metrics) = (self.configuration, self.durability, self.metrics)
        let readiness = self.readiness
        let registry = self.registry
        router.get("/health") { _, _ -> Response in
            Self.json(["status": "ok", "nodeId": configuration.nodeId])
        }
        router.get("/ready") { _, _ -> Response in
            let health = await durability.health()
            var loaded = readiness.isLoaded
            if loaded, let serving = readiness.serving { loaded = await serving() }
            let reachable = readiness.isStorageReachable
            let cutOff = readiness.cutOff?()
            if loaded, reachable, health.isHealthy, cutOff == nil {
                return Self.json(["status": "ready", "pendingWrites": String(health.pending)])
            }
            let detail: String
            if !loaded {
                detail = "partitions are still loading"
            } else if let cutOff {
                detail = "\(cutOff); PERSISTED and REPLICATED writes are not acknowledged"
            } else if !reachable {
                detail = "storage does not answer its probe; \(health.pending) writes are waiting"
            } else {
                detail = "storage is unreachable (\(health.lastError ?? "unknown error")); \(health.pending) writes are waiting"
            }
            throw ProblemDetails(.serviceUnavailable, kind: "not-ready", title: "Service Unavailable", detail: detail)
        }
        router.get("/metrics") { _, _ -> Response in
            metrics.writeBehindPending.record(await durability.health().pending)
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16 * 1024)
            registry.emit(into: &buffer)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        if let cluster = self.cluster {
            router.get("/cluster") { _, _ -> Response in
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: await cluster().json)))
            }
        }
        let sync = self.sync
        router.post("/sync") { request, context in
            try await sync.handle(request, context: context)
        }

        let connection = self.connection
        let maxFrame = configuration.maxFrameBytes
        let shouldUpgrade: ShouldUpgrade = { request, channel, _ in
            guard let route = WebSocketRoute(path: request.path ?? "/") else { return .dontUpgrade }
            let requestId = UUIDText.random()
            return .upgrade([:]) { inbound, outbound, _ in
                await withTaskExecutorPreference(EventLoopTaskExecutor(channel.eventLoop)) {
                    await connection.run(inbound: inbound, writer: outbound, channel: channel, pathTenant: route.tenant, requestId: requestId)
                }
            }
        }
        return Application(
            router: router,
            server: Self.server(
                limits: .standard,
                // validateUTF8: a text frame that is not UTF-8 fails the connection with 1007
                // (RFC 6455 §8.1) instead of reaching us with its bad bytes replaced by U+FFFD.
                webSocket: .init(
                    maxFrameSize: maxFrame, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: configuration.closeTimeout,
                    validateUTF8: true),
                capacity: capacity,
                shouldUpgrade: shouldUpgrade),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "topgun-data-plane"),
            onServerRunning: { channel in
                await onBound(channel.localAddress?.port ?? configuration.port)
            },
            logger: logger
        )
    }

    typealias ShouldUpgrade = @Sendable (HTTPRequest, any Channel, Logger) throws
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>

    /// HTTP/1 with the WebSocket upgrade, plus two handlers after the decoder (on a connection
    /// past `capacity`, only `CapacityRefusal`, which answers `503`):
    /// `MalformedRequestResponder` answers what the parser refuses with problem+json (431,
    /// 501, 400) instead of a bare 400, and `OneResponsePerConnection` ends the connection
    /// after every plain HTTP response.
    ///
    /// Why the second: hummingbird-websocket upgrades only a connection's first request. NIO's
    /// upgrade handler decides on that request before the HTTP pipeline is built; once it is,
    /// its async channel (the handler that feeds Hummingbird's request loop) cannot leave the
    /// pipeline, so WebSocket frames could never reach a WebSocket handler behind it, and a
    /// later upgrade gets `307` plus a closed connection, which clients take as a failed
    /// connect (the TypeScript client in Node does `GET /health` or `POST /sync`, then opens its
    /// WebSocket on the pooled connection). Closing after each plain response means no client
    /// holds such a connection; the price is one TCP connection per HTTP request on this port.
    static func server(
        limits: HTTPRequestLimits, webSocket: WebSocketServerConfiguration, capacity: ConnectionCapacity?, shouldUpgrade: @escaping ShouldUpgrade
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let upgradeChannel = HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: .init(http1: .init(httpDecoderConfiguration: limits.decoderConfiguration), ws: webSocket),
                shouldUpgrade: shouldUpgrade)
            return HTTP1EdgeChannel(upgradeChannel) { channel in
                if let capacity, !capacity.admit(channel) {
                    return [CapacityRefusal(problem: ProblemDetails.capacityReached(limit: capacity.limit))]
                }
                return [MalformedRequestResponder(limits: limits, render: ProblemDetails.malformedRequest), OneResponsePerConnection()]
            }
        }
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

/// Whether the node has loaded its partitions and its storage answers (part of `/ready`).
public final class Readiness: Sendable {
    private let loaded = Atomic<Bool>(false)
    let storageProbe: StorageProbe?
    /// On a node of a cluster: whether it has the published table and holds what it owns.
    let serving: (@Sendable () async -> Bool)?
    /// On a node of a cluster: why it counts itself cut off from its cluster (it does not
    /// reach a majority of the table's nodes), or nil.
    let cutOff: (@Sendable () -> String?)?
    public init(storageProbe: StorageProbe? = nil, serving: (@Sendable () async -> Bool)? = nil, cutOff: (@Sendable () -> String?)? = nil) {
        self.storageProbe = storageProbe
        self.serving = serving
        self.cutOff = cutOff
    }
    /// The latest probe's outcome (true without a probe: memory storage).
    public var isStorageReachable: Bool { storageProbe?.isReachable ?? true }
    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }
    public func markLoaded() { loaded.store(true, ordering: .releasing) }
}
