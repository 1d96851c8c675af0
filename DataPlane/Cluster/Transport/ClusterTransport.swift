import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// What a node does with a peer's request: returns the response body, or throws (the error's
/// description goes back to the peer, which sees `.remoteFailure`). Also called for one-way
/// messages, whose result is dropped: one at a time per connection, in the order sent, and the
/// connection is not read meanwhile, so a one-way handler must only hand the message over.
/// Must honour cancellation: shutdown waits for it.
public typealias ClusterRequestHandler = @Sendable (_ from: NodeID, _ type: String, _ body: [UInt8]) async throws -> [UInt8]

/// The cluster port: how data-plane nodes send each other forwarded writes, backups and
/// partitions. Message bodies are opaque bytes (MessagePack the caller made) tagged with a
/// type; this layer only carries them.
///
/// **Framing.** A frame is a 4-byte big-endian length and a MessagePack map (`ClusterEnvelope`):
/// its kind, a request id, the type, the body as `bin`. `ClusterFrameDecoder` splits the
/// stream; a frame above `maxFrameBytes`, or one that does not decode, closes the connection
/// with a log line, never more.
///
/// **Handshake.** Each connection starts with `ClusterHandshake`, a pure state machine: both
/// sides send HELLO (node, cluster, protocol version, nonce), then an HMAC-SHA256 proof of the
/// shared secret bound to both nonces, both node ids and the side's role. A refusal is typed
/// (`HandshakeRefusal`), logged once with the remote address, and closes the connection;
/// nothing a peer sends before it is authenticated reaches the handler. A handshake must end
/// within `handshakeTimeout`.
///
/// **One connection per direction.** A node dials one connection per peer, lazily, on the
/// first message for it (`ClusterPeerLink`), and sends its requests and one-way messages
/// there; the peer answers on the same connection. Requests from the peer arrive on the
/// connection the peer dialed, which this node accepted, and are served concurrently (a child
/// task each, at most `maxConcurrentRequestsPerConnection`; beyond that the connection is not
/// read, which pushes back to the sender through TCP). One-way messages are handled in the
/// order they were sent on a connection (protocol version 2; version 1 handled them
/// concurrently, so the versions do not mix). Responses are matched by id, so they
/// may come in any order. A connection that drops fails its pending requests at once with
/// `.closed`; the next request dials again. A failed dial or a refused handshake makes
/// requests to that peer fail fast for `redialBackoff`, so a dead peer is not hammered.
///
/// **Batching and back-pressure.** Each connection writes from a `ClusterOutbox`: whatever is
/// queued when the writer comes round goes out with one flush. The outbox holds at most
/// `maxQueuedBytesPerPeer`; when it is full (the peer or the network does not keep up),
/// `request` and `send` wait up to `overloadWait` for room, then throw `.peerOverloaded`. So
/// a peer that stops reading costs bounded memory and never blocks callers for longer than
/// that, nor any other peer. A request's timeout fails that request alone.
///
/// **Lifecycle.** `run()` is a swift-service-lifecycle `Service`: it binds the listener,
/// serves until graceful shutdown or cancellation, then closes the listener and every
/// connection; pending requests fail with `.closed`. Every connection runs as a child task of
/// `run()`, and every wait on a peer is bounded by a timer or by that cancellation.
public final class ClusterTransport: Service, Sendable {
    typealias AsyncChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// What a connection needs from the transport.
    struct Context: Sendable {
        let identity: ClusterIdentity
        let configuration: ClusterTransportConfiguration
        let logger: Logger
    }

    private struct State: Sendable {
        enum Phase: Sendable, Equatable {
            case idle, running, stopped
        }

        var phase: Phase = .idle
        var boundPort: Int?
        var portWaiters = ClusterWaiterTable<Int>()
        var stopReason = "stopped"
        var links: [NodeID: ClusterPeerLink] = [:]
        /// Accepted, authenticated connections, so `disconnect(_:)` can close them.
        var inbound: [UInt64: (peer: NodeID, channel: any Channel)] = [:]
        var lastInboundID: UInt64 = 0
    }

    public let identity: ClusterIdentity
    public let configuration: ClusterTransportConfiguration
    let handler: ClusterRequestHandler
    private let resolve: @Sendable (NodeID) -> String?
    let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let state = Mutex(State())
    /// Links to dial, handed to `run()` so their connections are its child tasks. Made here so
    /// that a request made before `run()` starts waits for it instead of failing.
    private let dials: AsyncStream<ClusterPeerLink>
    private let dialRequests: AsyncStream<ClusterPeerLink>.Continuation

    /// - Parameters:
    ///   - handler: serves the requests and one-way messages of authenticated peers.
    ///   - resolve: a peer's cluster endpoint, "host:port", from membership; nil when the node
    ///     is unknown. Asked on every dial, so a moved peer is found at its new address.
    public init(
        identity: ClusterIdentity,
        configuration: ClusterTransportConfiguration,
        handler: @escaping ClusterRequestHandler,
        resolve: @escaping @Sendable (NodeID) -> String?,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.identity = identity
        self.configuration = configuration
        self.handler = handler
        self.resolve = resolve
        var logger = logger
        logger[metadataKey: "node"] = "\(identity.nodeId)"
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        (dials, dialRequests) = AsyncStream.makeStream(of: ClusterPeerLink.self)
    }

    // MARK: Listening

    /// The port the listener is bound to, while it is.
    public var boundPort: Int? { state.withLock { $0.boundPort } }

    /// Waits until `run()` has bound the listener and returns its port (the one picked when
    /// the configuration says 0). Throws `.notListening` when binding failed or the transport
    /// has stopped.
    public func waitUntilBound() async throws -> Int {
        enum Now {
            case port(Int)
            case wait(UInt64)
        }
        let now = try state.withLock { state throws(ClusterTransportError) -> Now in
            if let port = state.boundPort { return .port(port) }
            if state.phase == .stopped { throw .notListening(reason: state.stopReason) }
            return .wait(state.portWaiters.register())
        }
        switch now {
        case .port(let port):
            return port
        case .wait(let id):
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                    if let result = state.withLock({ $0.portWaiters.attach(id, continuation) }) {
                        continuation.resume(with: result)
                    }
                }
            } onCancel: {
                let resumption = self.state.withLock { $0.portWaiters.resolve(id, with: .failure(CancellationError())) }
                resumption?.resume()
            }
        }
    }

    /// Binds the listener and serves until graceful shutdown or cancellation; then closes the
    /// listener and every connection, and fails pending requests with `.closed`. Throws when
    /// the listener cannot bind. Call it once.
    public func run() async throws {
        try state.withLock { state throws(ClusterTransportError) in
            guard state.phase == .idle else { throw .notListening(reason: "run() may be called only once") }
            state.phase = .running
        }
        do {
            try await cancelWhenGracefulShutdown { try await self.serve() }
        } catch {
            stop(reason: "\(error)")
            throw error
        }
        stop(reason: "stopped")
    }

    private func serve() async throws {
        let configuration = configuration
        let server: NIOAsyncChannel<AsyncChannel, Never>
        do {
            server = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(ChannelOptions.backlog, value: 256)
                // A restarted node must get its port back while old connections sit in TIME_WAIT.
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try Self.wrap(channel, maxFrameBytes: configuration.maxFrameBytes)
                    }
                }
        } catch {
            logger.error("cluster transport failed to bind", metadata: [
                "host": "\(configuration.host)", "port": "\(configuration.port)", "error": "\(error)",
            ])
            throw error
        }
        let port = server.channel.localAddress?.port ?? configuration.port
        let waiters = state.withLock { state in
            state.boundPort = port
            return state.portWaiters.resolveAll(with: .success(port))
        }
        for waiter in waiters { waiter.resume() }
        logger.info("cluster transport listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])

        let context = Context(identity: identity, configuration: configuration, logger: logger)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withDiscardingTaskGroup { links in
                    for await link in self.dials {
                        links.addTask { await link.run(context) }
                    }
                }
            }
            do {
                try await server.executeThenClose { connections in
                    try await withThrowingDiscardingTaskGroup { accepted in
                        for try await connection in connections {
                            accepted.addTask { await self.serveInbound(connection) }
                        }
                        accepted.cancelAll()
                    }
                }
            } catch {
                if !Task.isCancelled {
                    logger.error("cluster listener failed", metadata: ["error": "\(error)"])
                }
            }
            group.cancelAll()
        }
    }

    private func stop(reason: String) {
        let (links, channels, waiters) = state.withLock { state in
            state.phase = .stopped
            state.stopReason = reason
            state.boundPort = nil
            let links = Array(state.links.values)
            state.links = [:]
            let channels = state.inbound.values.map(\.channel)
            state.inbound = [:]
            return (links, channels, state.portWaiters.resolveAll(with: .failure(ClusterTransportError.notListening(reason: reason))))
        }
        dialRequests.finish()
        for link in links { link.close(.closed(link.node)) }
        for channel in channels { channel.close(promise: nil) }
        for waiter in waiters { waiter.resume() }
        logger.info("cluster transport stopped")
    }

    // MARK: Messages

    /// Sends a request to `node` and waits for its response body.
    ///
    /// Dials the peer if there is no connection yet. Throws `ClusterTransportError` (or
    /// `CancellationError`): `.unknownPeer` when membership has no endpoint for it,
    /// `.unreachable` or `.handshakeRefused` when it cannot be reached (fast, for
    /// `redialBackoff`, after a failed attempt), `.peerOverloaded` when its queue stayed full
    /// for `overloadWait`, `.timedOut` after `timeout` (default `requestTimeout`), `.closed` when
    /// the connection drops first, `.remoteFailure` when its handler threw,
    /// `.frameTooLarge` when the request does not fit in a frame.
    public func request(_ type: String, _ body: [UInt8], to node: NodeID, timeout: Duration? = nil) async throws -> [UInt8] {
        let link = try link(for: node)
        return try await link.request(
            type, body, timeout: timeout ?? configuration.requestTimeout,
            overloadWait: configuration.overloadWait, maxFrameBytes: configuration.maxFrameBytes)
    }

    /// Sends a one-way message to `node`: its handler runs, nothing comes back.
    ///
    /// Waits until the connection is up (bounded by `connectTimeout` and `handshakeTimeout`
    /// once `run()` runs) and the frame is queued; it returns before the peer has it, so a
    /// connection that drops right after may lose it. Throws as `request` does, without
    /// `.timedOut` and `.remoteFailure`.
    public func send(_ type: String, _ body: [UInt8], to node: NodeID) async throws {
        let link = try link(for: node)
        try await link.send(type, body, overloadWait: configuration.overloadWait, maxFrameBytes: configuration.maxFrameBytes)
    }

    /// Closes the connections to and from `node` (membership says it is gone): its pending
    /// requests fail at once with `.closed`; a later request dials again, without backoff.
    public func disconnect(_ node: NodeID) {
        let (link, channels) = state.withLock { state in
            let link = state.links.removeValue(forKey: node)
            var channels: [any Channel] = []
            for (id, connection) in state.inbound where connection.peer == node {
                state.inbound[id] = nil
                channels.append(connection.channel)
            }
            return (link, channels)
        }
        link?.close(.closed(node))
        for channel in channels { channel.close(promise: nil) }
    }

    /// Whether the outbound connection to `node` is established (authenticated).
    public func isConnected(to node: NodeID) -> Bool {
        state.withLock { $0.links[node] }?.isConnected ?? false
    }

    /// The link to send on: the current one, or a new one handed to `run()` to dial.
    private func link(for node: NodeID) throws(ClusterTransportError) -> ClusterPeerLink {
        guard node != identity.nodeId else { throw .handshakeRefused(node, reason: .selfConnection) }
        enum Lookup {
            case use(ClusterPeerLink)
            case fail(ClusterTransportError)
            case dial
        }
        func lookup(_ state: State, now: NIODeadline) -> Lookup {
            if state.phase == .stopped { return .fail(.closed(node)) }
            guard let link = state.links[node] else { return .dial }
            switch link.availability(now: now) {
            case .open: return .use(link)
            case .backingOff(let error): return .fail(error)
            case .ended: return .dial
            }
        }
        switch state.withLock({ lookup($0, now: .now()) }) {
        case .use(let link): return link
        case .fail(let error): throw error
        case .dial: break
        }
        // Membership is asked outside the lock: it is the caller's code.
        guard let endpoint = resolve(node) else { throw .unknownPeer(node) }
        let candidate = ClusterPeerLink(
            node: node, endpoint: endpoint, eventLoop: eventLoopGroup.next(),
            maxQueuedBytes: configuration.maxQueuedBytesPerPeer)
        let chosen = state.withLock { state -> Lookup in
            let existing = lookup(state, now: .now())
            guard case .dial = existing else { return existing }
            state.links[node] = candidate
            return .dial
        }
        switch chosen {
        case .use(let link): return link
        case .fail(let error): throw error
        case .dial:
            dialRequests.yield(candidate)
            return candidate
        }
    }

    // MARK: Inbound bookkeeping

    /// Records an authenticated inbound connection; nil once stopped (close it).
    func registerInbound(peer: NodeID, channel: any Channel) -> UInt64? {
        state.withLock { state in
            guard state.phase != .stopped else { return nil }
            state.lastInboundID &+= 1
            state.inbound[state.lastInboundID] = (peer, channel)
            return state.lastInboundID
        }
    }

    func unregisterInbound(_ id: UInt64) {
        state.withLock { state in state.inbound[id] = nil }
    }

    /// Puts the frame decoder and the async bridge on a fresh channel (on its event loop).
    static func wrap(_ channel: any Channel, maxFrameBytes: Int) throws -> AsyncChannel {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClusterFrameDecoder(maxFrameBytes: maxFrameBytes)))
        return try AsyncChannel(
            wrappingChannelSynchronously: channel,
            configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16)))
    }
}
