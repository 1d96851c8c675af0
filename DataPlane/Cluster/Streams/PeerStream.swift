import Logging
import Metrics
import Synchronization
import TopGunCore

/// Pushes to one peer, in order (see `StreamSequence` for the receiving side).
///
/// `append` never waits (a `Subscriber` must not): the entry is queued, and the first entry
/// of a burst starts one flush task, which sends everything queued meanwhile as one `stream`
/// message, then the next batch, until the queue is empty. One flush task at a time keeps the
/// order; the transport handles one-way messages in order on the receiving side.
///
/// Loss is never silent. A send that fails, or a queue that outgrows `maxQueuedBytes` (the
/// peer does not keep up), starts a new generation, which the receiver sees as a gap. A message
/// lost with a connection that dropped after the transport took it is seen as a gap when the
/// next message arrives; `tick` sends an empty message after a busy second, so that a loss at
/// the end of a burst is seen within about a second too.
final class PeerStream: Sendable {
    let node: NodeID
    private let deliver: @Sendable ([UInt8]) async throws -> Void
    private let maxQueuedBytes: Int
    private let maxMessageBytes: Int
    private let overflowCounter: Counter?
    private let logger: Logger

    private struct State {
        var queue: [StreamEntry] = []
        var queuedBytes = 0
        var flushing = false
        let stream = UInt64.random(in: 1...UInt64.max)
        var generation: UInt64 = 0
        var sequence: UInt64 = 0
        /// Whether a message went out since the last `tick`.
        var sentSinceTick = false
        var overflows = 0
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - deliver: sends one encoded `StreamMessage` to the peer (the transport's one-way send).
    init(
        node: NodeID, maxQueuedBytes: Int = 8 * 1024 * 1024, maxMessageBytes: Int = 4 * 1024 * 1024, overflows: Counter? = nil,
        logger: Logger, deliver: @escaping @Sendable ([UInt8]) async throws -> Void
    ) {
        self.node = node
        self.overflowCounter = overflows
        self.deliver = deliver
        self.maxQueuedBytes = maxQueuedBytes
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
    }

    /// Queues `entry` and makes sure a flush runs.
    func append(_ entry: StreamEntry) {
        append(contentsOf: CollectionOfOne(entry))
    }

    /// Queues `entries`, in order, and makes sure a flush runs.
    func append(contentsOf entries: some Collection<StreamEntry>) {
        guard !entries.isEmpty else { return }
        var overflowed = false
        let start = state.withLock { state -> Bool in
            for entry in entries {
                if state.queuedBytes + entry.byteCount > maxQueuedBytes, !state.queue.isEmpty {
                    // The peer does not keep up: what is queued is dropped, and the new
                    // generation tells the receiver so.
                    state.queue.removeAll()
                    state.queuedBytes = 0
                    state.generation += 1
                    state.sequence = 0
                    state.overflows += 1
                    overflowed = true
                }
                state.queue.append(entry)
                state.queuedBytes += entry.byteCount
            }
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        if overflowed {
            overflowCounter?.increment()
            logger.warning("a peer does not keep up with this node's pushes; they were dropped", metadata: ["peer": "\(node)"])
        }
        if start { Task { await self.flush() } }
    }

    /// After a second in which messages went out, sends an empty one (see the type's comment).
    func tick() {
        let start = state.withLock { state -> Bool in
            guard state.sentSinceTick, !state.flushing else { return false }
            state.sentSinceTick = false
            state.flushing = true
            return true
        }
        if start { Task { await self.flush(evenIfEmpty: true) } }
    }

    /// How many times the queue overflowed (for tests and metrics).
    var overflows: Int { state.withLock { $0.overflows } }

    /// Waits (up to `patience`) while more than half the queue's bound waits to be sent: a
    /// producer of a large answer (a live query's first result) goes at the peer's pace
    /// rather than overflowing the queue.
    func waitForRoom(patience: Duration = .seconds(30)) async {
        let deadline = ContinuousClock.now + patience
        while state.withLock({ $0.queuedBytes > maxQueuedBytes / 2 }), ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    private func flush(evenIfEmpty: Bool = false) async {
        var sendEmpty = evenIfEmpty
        while true {
            let next = state.withLock { state -> StreamMessage? in
                guard !state.queue.isEmpty || sendEmpty else {
                    state.flushing = false
                    return nil
                }
                var taken = 0
                var bytes = 0
                while taken < state.queue.count, taken == 0 || bytes + state.queue[taken].byteCount <= maxMessageBytes {
                    bytes += state.queue[taken].byteCount
                    taken += 1
                }
                let entries = Array(state.queue.prefix(taken))
                state.queue.removeFirst(taken)
                state.queuedBytes -= bytes
                state.sequence &+= 1
                if taken > 0 { state.sentSinceTick = true }
                return StreamMessage(
                    position: .init(stream: state.stream, generation: state.generation, sequence: state.sequence), entries: entries)
            }
            guard let message = next else { return }
            sendEmpty = false
            do {
                try await deliver(message.encoded())
            } catch {
                // The peer may not have it: the next message starts a new generation (a gap).
                logger.debug("cluster stream message not sent", metadata: ["peer": "\(node)", "error": "\(error)"])
                state.withLock { state in
                    if state.generation == message.position.generation {
                        state.generation += 1
                        state.sequence = 0
                    }
                    // The next tick tells the receiver, even if nothing else is sent.
                    state.sentSinceTick = true
                }
            }
        }
    }
}

/// The node's `PeerStream`s, one per peer, made on first use.
final class PeerStreams: Sendable {
    private let streams = Mutex<[NodeID: PeerStream]>([:])
    private let transport: ClusterTransport
    private let overflows: Counter?
    private let logger: Logger
    /// What a stream to this node itself delivers to (its own inbox): the node's own feeds
    /// and sessions go through the same code as a peer's.
    private let loopback = SynchronizedBox<(@Sendable ([UInt8]) async throws -> Void)?>(nil)

    init(transport: ClusterTransport, overflows: Counter? = nil, logger: Logger) {
        self.transport = transport
        self.overflows = overflows
        self.logger = logger
    }

    func loop(into deliver: @escaping @Sendable ([UInt8]) async throws -> Void) {
        loopback.set(deliver)
    }

    func to(_ node: NodeID) -> PeerStream {
        streams.withLock { streams in
            if let stream = streams[node] { return stream }
            let (transport, loopback, local) = (transport, loopback, node == transport.identity.nodeId)
            let stream = PeerStream(node: node, overflows: overflows, logger: logger) { body in
                if local {
                    guard let deliver = loopback.get() else { throw ClusterMessageError("this node is still starting") }
                    try await deliver(body)
                } else {
                    try await transport.send(ClusterMessageType.stream, body, to: node)
                }
            }
            streams[node] = stream
            return stream
        }
    }

    /// Ticks every stream each `interval` until cancelled (see `PeerStream.tick`).
    func runTicks(interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for stream in streams.withLock({ Array($0.values) }) { stream.tick() }
        }
    }
}
