import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DataPlane

/// Where each test node listens, as membership would say.
final class ClusterTestDirectory: Sendable {
    private let endpoints = Mutex<[NodeID: String]>([:])

    func set(_ node: String, port: Int) {
        set(node, endpoint: "127.0.0.1:\(port)")
    }

    func set(_ node: String, endpoint: String) {
        endpoints.withLock { $0[NodeID(node)] = endpoint }
    }

    func resolve(_ node: NodeID) -> String? {
        endpoints.withLock { $0[node] }
    }
}

/// Log records of every test node, for assertions about what was logged.
final class ClusterLogCapture: Sendable {
    struct Record: Sendable {
        var label: String
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    func logger(label: String) -> Logger {
        Logger(label: label) { label in Handler(label: label, capture: self) }
    }

    func warnings(from label: String, _ message: String) -> [Record] {
        all.filter { $0.label == label && $0.level == .warning && $0.message == message }
    }

    fileprivate func append(_ record: Record) {
        records.withLock { $0.append(record) }
    }

    struct Handler: LogHandler {
        let label: String
        let capture: ClusterLogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            for (key, value) in event.metadata ?? [:] { merged[key] = value }
            capture.append(Record(
                label: label, level: event.level, message: event.message.description,
                metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// Handler calls seen by a test node.
final class ClusterCallLog: Sendable {
    struct Call: Sendable, Equatable {
        var from: NodeID
        var type: String
        var body: [UInt8]
    }

    private let calls = Mutex<[Call]>([])

    var all: [Call] { calls.withLock { $0 } }
    var count: Int { calls.withLock { $0.count } }

    func record(_ from: NodeID, _ type: String, _ body: [UInt8]) {
        calls.withLock { $0.append(Call(from: from, type: type, body: body)) }
    }

    func count(of type: String) -> Int {
        calls.withLock { $0.filter { $0.type == type }.count }
    }
}

/// Handlers the tests give their nodes.
enum ClusterTestHandlers {
    /// "hang": never answers (until cancelled); anything else: the body back.
    static func echo(recording log: ClusterCallLog? = nil) -> ClusterRequestHandler {
        { from, type, body in
            log?.record(from, type, body)
            if type == "hang" {
                try await Task.sleep(for: .seconds(3600))
            }
            return body
        }
    }
}

struct ClusterTestFailure: Error, CustomStringConvertible {
    var description: String
}

extension ClusterTransportConfiguration {
    /// Generous bounds for what should succeed on a loaded machine; a short backoff.
    static func forTests(port: Int = 0) -> ClusterTransportConfiguration {
        ClusterTransportConfiguration(
            host: "127.0.0.1", port: port, handshakeTimeout: .seconds(10), connectTimeout: .seconds(5),
            requestTimeout: .seconds(30), redialBackoff: .milliseconds(300))
    }
}

/// Test nodes on real sockets (127.0.0.1, port 0), stopped at the end of the test.
final class ClusterTestNodes: Sendable {
    static let secret = [UInt8](repeating: 0x42, count: 32)

    let directory = ClusterTestDirectory()
    let logs = ClusterLogCapture()
    private let running = Mutex<[(transport: ClusterTransport, task: Task<Void, any Error>)]>([])

    static func with<T>(_ body: (ClusterTestNodes) async throws -> T) async throws -> T {
        let cluster = ClusterTestNodes()
        do {
            let result = try await body(cluster)
            await cluster.stopAll()
            return result
        } catch {
            await cluster.stopAll()
            throw error
        }
    }

    func transport(
        _ node: String, cluster: String = "alpha", secret: [UInt8] = ClusterTestNodes.secret,
        configuration: ClusterTransportConfiguration = .forTests(),
        handler: @escaping ClusterRequestHandler = ClusterTestHandlers.echo()
    ) throws -> ClusterTransport {
        let directory = directory
        return ClusterTransport(
            identity: try ClusterIdentity(nodeId: NodeID(node), clusterId: cluster, secret: secret),
            configuration: configuration, handler: handler,
            resolve: { directory.resolve($0) }, logger: logs.logger(label: node))
    }

    /// Starts a node and publishes its endpoint in the directory.
    @discardableResult
    func start(
        _ node: String, cluster: String = "alpha", secret: [UInt8] = ClusterTestNodes.secret,
        configuration: ClusterTransportConfiguration = .forTests(),
        handler: @escaping ClusterRequestHandler = ClusterTestHandlers.echo()
    ) async throws -> ClusterTransport {
        let transport = try transport(node, cluster: cluster, secret: secret, configuration: configuration, handler: handler)
        let task = Task { try await transport.run() }
        running.withLock { $0.append((transport, task)) }
        let port = try await transport.waitUntilBound()
        directory.set(node, port: port)
        return transport
    }

    /// Cancels a node's `run()` and waits for it to return.
    func stop(_ transport: ClusterTransport) async {
        let task = running.withLock { running -> Task<Void, any Error>? in
            guard let index = running.firstIndex(where: { $0.transport === transport }) else { return nil }
            return running.remove(at: index).task
        }
        task?.cancel()
        _ = await task?.result
    }

    func stopAll() async {
        let all = running.withLock { running in
            defer { running = [] }
            return running
        }
        for node in all { node.task.cancel() }
        for node in all { _ = await node.task.result }
    }

    /// Polls `condition` until it holds; fails the test after `timeout`.
    func waitUntil(
        timeout: Duration = .seconds(20), _ what: String = "condition",
        sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A port nothing listens on (bound a moment ago, then closed).
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}

/// A TCP server that accepts connections and never says a word.
final class SilentClusterPeer: Sendable {
    private final class Connections: Sendable {
        let counts = Mutex<(accepted: Int, open: Int)>((0, 0))
    }

    private let server: any Channel
    private let connections: Connections
    let port: Int

    var accepted: Int { connections.counts.withLock { $0.accepted } }
    var open: Int { connections.counts.withLock { $0.open } }

    private init(server: any Channel, connections: Connections, port: Int) {
        self.server = server
        self.connections = connections
        self.port = port
    }

    static func start() async throws -> SilentClusterPeer {
        let connections = Connections()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                connections.counts.withLock { $0.accepted += 1; $0.open += 1 }
                channel.closeFuture.whenComplete { _ in connections.counts.withLock { $0.open -= 1 } }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        return SilentClusterPeer(server: server, connections: connections, port: port)
    }

    func close() {
        server.close(promise: nil)
    }
}

/// A client that speaks raw bytes to a cluster port (with the frame decoder, so what the node
/// sends comes as frames).
enum RawClusterClient {
    struct StillOpen: Error {}

    static func connect(port: Int) async throws -> ClusterTransport.AsyncChannel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try ClusterTransport.wrap(channel, maxFrameBytes: 16 << 20)
                }
            }
    }

    /// Writes `bytes`, then reads until the node closes the connection, and returns the
    /// frames it sent; throws `StillOpen` if it is still open after `within`.
    static func framesUntilClosed(_ channel: ClusterTransport.AsyncChannel, sending bytes: [UInt8] = [], within: Duration) async throws -> [ByteBuffer] {
        try await channel.executeThenClose { inbound, outbound in
            if !bytes.isEmpty {
                try? await outbound.write(ByteBuffer(bytes: bytes))
            }
            return try await withThrowingTaskGroup(of: [ByteBuffer]?.self) { group in
                group.addTask {
                    var frames: [ByteBuffer] = []
                    do {
                        for try await frame in inbound { frames.append(frame) }
                    } catch {
                        // A reset is a close too.
                    }
                    return frames
                }
                group.addTask {
                    try await Task.sleep(for: within)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let frames = first else { throw StillOpen() }
                return frames
            }
        }
    }

    static func frame(_ envelope: ClusterEnvelope) throws -> [UInt8] {
        Array(try envelope.frame(maxFrameBytes: 16 << 20).readableBytesView)
    }
}
