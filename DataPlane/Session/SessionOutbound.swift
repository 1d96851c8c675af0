import HummingbirdWebSocket
import NIOCore
import NIOWebSocket
import Synchronization
import TopGunCore
import TopGunWire

/// Identifies one client connection within a node.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public var description: String { "s\(rawValue)" }

    private static let counter = Atomic<UInt64>(0)

    /// A fresh id, unique within the process.
    public static func next() -> SessionID {
        SessionID(rawValue: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    public init(rawValue: UInt64) { self.rawValue = rawValue }
}

/// The sending side of one connection, shared with everything that pushes to it (live
/// queries, topics, locks). Sending never waits: messages are queued and written in order.
///
/// The queue is bounded in bytes (`OutboundQueue`): a client that does not read is
/// disconnected (close 1013) rather than allowed to grow the server's memory; it reconnects
/// and catches up through Merkle sync. Responses wait for room (`waitForRoom`) instead of
/// piling up.
///
/// A WebSocket connection's frames go straight into its NIO channel (`ChannelSink`), with no
/// task of its own; `make` gives a stream instead, for tests that read what was sent.
public final class SessionOutbound: Sendable {
    public enum Item: Sendable {
        case frame([UInt8])
        case close(CloseCode, String)
    }

    private enum Sink: Sendable {
        case stream(AsyncStream<Item>.Continuation)
        case channel(ChannelSink)
    }

    /// How much one connection may hold and how long its close and its stalls may take.
    public struct Limits: Sendable {
        /// Bytes queued for the client at most (plus one frame); past it the client is closed
        /// with 1013.
        public var maxQueuedBytes: Int
        /// After the close frame, how long the peer has to answer before TCP is closed.
        public var closeTimeout: Duration
        /// How long a response may wait for the client to read before it is closed with 1013.
        public var stallTimeout: Duration

        public init(maxQueuedBytes: Int = 4 * 1024 * 1024, closeTimeout: Duration = .seconds(3), stallTimeout: Duration = .seconds(30)) {
            self.maxQueuedBytes = maxQueuedBytes
            self.closeTimeout = closeTimeout
            self.stallTimeout = stallTimeout
        }
    }

    public let id: SessionID
    private let sink: Sink
    /// Set when the stream's buffer overflowed or was closed (the channel sink keeps its own).
    private let streamOverflowed = Atomic<Bool>(false)
    private let streamClosed = Atomic<Bool>(false)
    /// Payload bytes handed to the socket since the last `takeBytesSent` (usage metering).
    private let bytesSent = Atomic<Int>(0)

    /// Set once the client asked for the partition map (a cluster-aware client): it is sent
    /// each newer map as the table changes. Clients that never asked get none.
    private let followsPartitionMap = Atomic<Bool>(false)

    public var isFollowingPartitionMap: Bool { followsPartitionMap.load(ordering: .relaxed) }

    public func followPartitionMap() { followsPartitionMap.store(true, ordering: .relaxed) }

    /// The bytes sent since the last call, and starts counting again.
    public func takeBytesSent() -> Int {
        bytesSent.exchange(0, ordering: .relaxed)
    }

    /// An outbound side whose items are read from the returned stream.
    public static func make(id: SessionID = .next(), capacity: Int = 4096) -> (SessionOutbound, AsyncStream<Item>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
        return (SessionOutbound(id: id, sink: .stream(continuation)), stream)
    }

    /// An outbound side that writes binary frames into `channel` (an upgraded WebSocket
    /// channel) and closes through `writer`, so the WebSocket close handshake stays
    /// hummingbird-websocket's. `onClosing` runs once, when the connection starts closing.
    public static func channel(
        _ channel: any Channel, closingThrough writer: WebSocketOutboundWriter, id: SessionID = .next(), limits: Limits = Limits(),
        onClosing: @escaping @Sendable () -> Void = {}
    ) -> SessionOutbound {
        self.channel(channel, id: id, limits: limits, onClosing: onClosing) { code, reason in
            try? await writer.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
        }
    }

    /// An outbound side that writes binary frames into `channel` and closes with `closer`.
    static func channel(
        _ channel: any Channel, id: SessionID = .next(), limits: Limits = Limits(), onClosing: @escaping @Sendable () -> Void = {},
        closer: @escaping @Sendable (CloseCode, String) async -> Void
    ) -> SessionOutbound {
        let sink = ChannelSink(
            channel: channel, limits: OutboundQueue.Limits(maxQueuedBytes: limits.maxQueuedBytes),
            timeouts: ChannelSink.Timeouts(close: TimeAmount(limits.closeTimeout), stall: TimeAmount(limits.stallTimeout)),
            closer: closer, onClosing: onClosing)
        return SessionOutbound(id: id, sink: .channel(sink))
    }

    private init(id: SessionID, sink: Sink) {
        self.id = id
        self.sink = sink
    }

    /// Whether the queue overflowed (the connection is then closed with 1013).
    public var didOverflow: Bool {
        switch sink {
        case .stream: streamOverflowed.load(ordering: .relaxed)
        case .channel(let sink): sink.didOverflow
        }
    }

    /// Whether the connection is closing (or closed): what it sends is dropped, and what it
    /// receives is no longer handled.
    public var isClosing: Bool {
        switch sink {
        case .stream: streamClosed.load(ordering: .relaxed)
        case .channel(let sink): sink.isClosing
        }
    }

    /// Bytes queued for the client and not yet taken by its socket.
    public var queuedBytes: Int {
        switch sink {
        case .stream: 0
        case .channel(let sink): sink.queuedBytes
        }
    }

    /// Responses waiting for room (for tests).
    var roomWaiterCount: Int {
        switch sink {
        case .stream: 0
        case .channel(let sink): sink.roomWaiterCount
        }
    }

    /// Waits until the client has read enough of what it was sent for another response or
    /// result page to be queued; false when the connection closes first.
    public func waitForRoom() async -> Bool {
        switch sink {
        case .stream: !streamClosed.load(ordering: .relaxed)
        case .channel(let sink): await sink.waitForRoom()
        }
    }

    public func send(_ message: TopGunMessage) {
        switch sink {
        case .stream: send(encoded: WireCodec().encode(message))
        case .channel(let sink):
            let bytes = WireCodec().encode(message)
            bytesSent.add(bytes.count, ordering: .relaxed)
            sink.send(Self.frameBuffer(bytes))
        }
    }

    /// Sends bytes already encoded.
    public func send(encoded bytes: [UInt8]) {
        switch sink {
        case .stream(let continuation):
            if case .dropped = continuation.yield(.frame(bytes)) {
                streamOverflowed.store(true, ordering: .relaxed)
                continuation.finish()
            }
        case .channel(let sink):
            bytesSent.add(bytes.count, ordering: .relaxed)
            sink.send(Self.frameBuffer(bytes))
        }
    }

    /// Sends a frame already encoded. One buffer may go to many recipients: it is never copied.
    public func send(frame buffer: ByteBuffer) {
        switch sink {
        case .stream: send(encoded: Array(buffer.readableBytesView))
        case .channel(let sink):
            bytesSent.add(buffer.readableBytes, ordering: .relaxed)
            sink.send(buffer)
        }
    }

    /// Queues a frame already encoded as part of `batch`: the frame leaves when the batch is
    /// flushed, together with everything else the batch queued for this session.
    public func send(frame buffer: ByteBuffer, in batch: inout FanOutBatch) {
        switch sink {
        case .stream: send(frame: buffer)
        case .channel(let sink):
            bytesSent.add(buffer.readableBytes, ordering: .relaxed)
            if sink.enqueue(buffer) { batch.add(sink) }
        }
    }

    /// Encodes `message` and queues it as part of `batch`.
    public func send(_ message: TopGunMessage, in batch: inout FanOutBatch) {
        switch sink {
        case .stream: send(message)
        case .channel:
            send(frame: Self.frameBuffer(WireCodec().encode(message)), in: &batch)
        }
    }

    /// Sends a close frame after everything queued so far, then ends the connection.
    public func close(_ code: CloseCode, reason: String) {
        switch sink {
        case .stream(let continuation):
            guard !streamClosed.exchange(true, ordering: .relaxed) else { return }
            continuation.yield(.close(code, CloseReason.fitted(reason)))
            continuation.finish()
        case .channel(let sink):
            sink.close(code, reason: reason)
        }
    }

    /// The connection's task is ending: a close asked for and not yet sent goes out now, and is
    /// waited for (at most the close timeout).
    public func finishClosing() async {
        switch sink {
        case .stream: break
        case .channel(let sink): await sink.finishClosing()
        }
    }

    /// The socket is gone: accepts nothing more, and drops what is queued.
    public func finish() {
        switch sink {
        case .stream(let continuation):
            streamClosed.store(true, ordering: .relaxed)
            continuation.finish()
        case .channel(let sink): sink.finish()
        }
    }

    /// The largest WebSocket header a server writes (no mask): room left in front of the
    /// payload lets NIO's frame encoder write the header in place, so a frame is one buffer.
    static let frameHeadroom = 10

    /// A buffer holding `bytes` with room for the frame header in front.
    static func frameBuffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + frameHeadroom)
        buffer.moveWriterIndex(forwardBy: frameHeadroom)
        buffer.moveReaderIndex(forwardBy: frameHeadroom)
        buffer.writeBytes(bytes)
        return buffer
    }
}

/// Frames queued for many sessions at once (one write's fan-out). The sessions' drains are
/// grouped by event loop and handed over in chunks of `chunk` sessions, so a fan-out to N
/// sessions costs about N / 32 event-loop jobs rather than N, and each loop starts writing its
/// own sessions while the rest is still being queued. `flush` hands over what is left and must
/// be called once everything is queued.
///
/// Frames for other nodes' sessions (`RemoteSubscriber`) are grouped too: consecutive sends of
/// the same frame to sessions behind the same `PeerStream` become one stream entry naming all
/// of them, so a write seen by a thousand feeds on a peer crosses the cluster once.
public struct FanOutBatch {
    private var groups: [ObjectIdentifier: (loop: any EventLoop, sinks: [ChannelSink])] = [:]
    private var remote: [ObjectIdentifier: RemoteFrames] = [:]
    /// Whether sessions are drained only at `flush`, not in chunks as they are queued: a
    /// fan-out sending each session several frames (a `SERVER_EVENT`, then its queries'
    /// `QUERY_UPDATE`s) then writes each session once, with all of them.
    private let holdsDrains: Bool

    /// One peer's frames, in the order they were sent.
    private struct RemoteFrames {
        let stream: PeerStream
        var entries: [(frame: ByteBuffer, sessions: [UInt64])] = []
    }

    public init(holdingDrains: Bool = false) {
        self.holdsDrains = holdingDrains
    }

    /// Sessions drained by one event-loop job: a loop starts writing while the rest is queued.
    static let chunk = 32

    mutating func add(_ sink: ChannelSink) {
        let loop = sink.channel.eventLoop
        let id = ObjectIdentifier(loop)
        groups[id, default: (loop, [])].sinks.append(sink)
        if !holdsDrains, let sinks = groups[id]?.sinks, sinks.count >= Self.chunk {
            groups[id] = nil
            Self.drain(sinks, on: loop)
        }
    }

    /// Queues `frame` for `session` of the node `stream` goes to.
    mutating func add(_ frame: ByteBuffer, for session: UInt64, on stream: PeerStream) {
        let id = ObjectIdentifier(stream)
        if remote[id] == nil { remote[id] = RemoteFrames(stream: stream) }
        if let last = remote[id]!.entries.last, last.frame == frame {
            remote[id]!.entries[remote[id]!.entries.count - 1].sessions.append(session)
        } else {
            remote[id]!.entries.append((frame, [session]))
        }
    }

    /// Starts writing what the batch queued, and empties the batch.
    public mutating func flush() {
        for (_, group) in groups {
            // In chunks, so that each loop starts writing while the rest is handed over.
            var start = 0
            while start < group.sinks.count {
                let end = min(start + Self.chunk, group.sinks.count)
                Self.drain(Array(group.sinks[start..<end]), on: group.loop)
                start = end
            }
        }
        groups = [:]
        for (_, peer) in remote {
            peer.stream.append(contentsOf: peer.entries.map { .frame(sessions: $0.sessions, bytes: Array($0.frame.readableBytesView)) })
        }
        remote = [:]
    }

    /// Sessions of the loop this code runs on are written at once: their loop is busy with
    /// this very code (a map's fan-out runs on the writer's event loop), and a job queued
    /// behind it would wait for the rest of the fan-out (the live queries' updates) first.
    private static func drain(_ sinks: [ChannelSink], on loop: any EventLoop) {
        if loop.inEventLoop {
            for sink in sinks { sink.drain() }
        } else {
            loop.execute { for sink in sinks { sink.drain() } }
        }
    }
}

/// Writes one WebSocket connection's frames into its NIO channel, in order, on the channel's
/// event loop, and flushes once for everything queued meanwhile (one `writev` for a burst).
///
/// It replaces a writer task per connection: an idle connection then costs no task and no
/// async frames for its sending side, and a fan-out to many sessions costs one event-loop job
/// per session instead of a task wake-up and an actor hop per message.
///
/// What it holds is bounded in bytes (`OutboundQueue`): frames go into the channel only while
/// the channel is writable (NIO's own buffer stays under its high-water mark), the rest waits
/// here, and a client that lets more than the bound pile up is closed with 1013.
///
/// Closing is bounded in time: once the close frame is handed to the WebSocket layer, the TCP
/// connection is closed after `closeTimeout` whether or not the peer answered (a peer that
/// never reads, or never answers the close handshake, would otherwise keep its socket and its
/// session for ever). A response waiting for room longer than `stallTimeout` closes with 1013.
///
/// The state is a small mutex-guarded value: producers (actors, the inbound loop, other
/// connections) may be on any thread, and the lock is held only to append or to take frames.
final class ChannelSink: Sendable {
    struct Timeouts: Sendable {
        /// After the close frame: how long the peer has to answer it before the TCP
        /// connection is closed.
        var close: TimeAmount
        /// How long a response may wait for room before the client counts as not reading.
        var stall: TimeAmount
    }

    private struct State {
        var queue: OutboundQueue
        var drainScheduled = false
        /// Responses and result pages waiting for room (`waitForRoom`).
        var roomWaiters: [CheckedContinuation<Bool, Never>] = []
        var stallTimer: Scheduled<Void>?
        /// The task handing the close to the WebSocket layer, once started.
        var closeHandover: Task<Void, Never>?
    }

    let channel: any Channel
    let timeouts: Timeouts
    /// Starts the WebSocket close handshake (hummingbird-websocket's handler must know a close
    /// was sent, so it goes through its writer).
    let closer: @Sendable (CloseCode, String) async -> Void
    /// Called once, when the connection starts closing (for whatever reason): the session
    /// releases what it holds (locks, subscriptions) without waiting for the socket to end.
    let onClosing: @Sendable () -> Void
    private let state: Mutex<State>

    init(
        channel: any Channel, limits: OutboundQueue.Limits, timeouts: Timeouts,
        closer: @escaping @Sendable (CloseCode, String) async -> Void, onClosing: @escaping @Sendable () -> Void = {}
    ) {
        self.channel = channel
        self.timeouts = timeouts
        self.closer = closer
        self.onClosing = onClosing
        self.state = Mutex(State(queue: OutboundQueue(limits: limits)))
    }

    var didOverflow: Bool { state.withLock { $0.queue.overflowed } }

    var isClosing: Bool { state.withLock { $0.queue.isClosing } }

    /// Bytes queued and not yet taken by the channel.
    var queuedBytes: Int { state.withLock { $0.queue.queuedBytes } }

    var roomWaiterCount: Int { state.withLock { $0.roomWaiters.count } }

    func send(_ buffer: ByteBuffer) {
        if enqueue(buffer) { scheduleDrain() }
    }

    /// Queues a frame without scheduling the drain; returns whether the caller claimed the
    /// drain and must run it (`send` does at once; `FanOutBatch` groups drains by event loop).
    func enqueue(_ buffer: ByteBuffer) -> Bool {
        let (claimed, overflowed) = state.withLock { state -> (Bool, Bool) in
            switch state.queue.enqueue(buffer) {
            case .refused: return (false, false)
            case .queued: return (Self.claimDrain(&state), false)
            case .overflowed: return (Self.claimDrain(&state), true)
            }
        }
        if overflowed { onClosing() }
        return claimed
    }

    func close(_ code: CloseCode, reason: String) {
        let schedule = state.withLock { state -> Bool? in
            guard state.queue.close(code, reason: reason) else { return nil }
            return Self.claimDrain(&state)
        }
        guard let schedule else { return }
        onClosing()
        if schedule { scheduleDrain() }
    }

    /// The socket is gone: nothing more is written, waiting responses give up.
    func finish() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.queue.finish()
            state.stallTimer?.cancel()
            state.stallTimer = nil
            defer { state.roomWaiters = [] }
            return state.roomWaiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Waits until the queue has room for a response or a result page; false when the
    /// connection closes first (then there is no one to answer).
    func waitForRoom() async -> Bool {
        enum Fast { case room, closed, wait }
        let fast = state.withLock { state -> Fast in
            if state.queue.hasRoom { return .room }
            return state.queue.isClosing ? .closed : .wait
        }
        switch fast {
        case .room: return true
        case .closed: return false
        case .wait: break
        }
        return await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
            let answer = state.withLock { state -> Bool? in
                if state.queue.hasRoom { return true }
                if state.queue.isClosing { return false }
                state.roomWaiters.append(waiter)
                if state.stallTimer == nil {
                    state.stallTimer = channel.eventLoop.scheduleTask(in: timeouts.stall) { [self] in self.stalled() }
                }
                return nil
            }
            if let answer { waiter.resume(returning: answer) }
        }
    }

    /// A response waited for room for the whole stall timeout: the client does not read.
    private func stalled() {
        let stillWaiting = state.withLock { state -> Bool in
            state.stallTimer = nil
            return !state.roomWaiters.isEmpty
        }
        if stillWaiting { close(.tryAgainLater, reason: "slow consumer: stopped reading") }
    }

    private static func claimDrain(_ state: inout State) -> Bool {
        guard !state.drainScheduled else { return false }
        state.drainScheduled = true
        return true
    }

    private func scheduleDrain() {
        channel.eventLoop.execute { self.drain() }
    }

    /// On the event loop: writes what the channel takes (all of it once closing: the close
    /// frame must follow), flushes once, then hands over a pending close and wakes responses
    /// waiting for room. While the socket cannot take more (the client reads slowly), frames
    /// stay queued (and count against the bound) and the drain looks again shortly.
    func drain() {
        let (frames, closing) = state.withLock { state in
            state.drainScheduled = false
            return (state.queue.takeFrames(), state.queue.isClosing)
        }
        var written = 0
        // A channel that is no longer active takes (and drops) everything: nothing waits for it.
        let active = channel.isActive
        while written < frames.count, closing || !active || channel.isWritable {
            channel.write(WebSocketFrame(fin: true, opcode: .binary, data: frames[written]), promise: nil)
            written += 1
        }
        let wrote = written > 0
        let unwritten = frames[written...]
        if wrote { channel.flush() }
        let (close, waiters, room, retry) = state.withLock { state in
            state.queue.settle(unwritten: unwritten)
            let close = state.queue.takeCloseToHandOver()
            var waiters: [CheckedContinuation<Bool, Never>] = []
            let room = state.queue.hasRoom
            if (room || state.queue.isClosing), !state.roomWaiters.isEmpty {
                waiters = state.roomWaiters
                state.roomWaiters = []
                state.stallTimer?.cancel()
                state.stallTimer = nil
            }
            var retry = false
            if !state.queue.frames.isEmpty, !state.drainScheduled {
                state.drainScheduled = true
                retry = true
            }
            return (close, waiters, room, retry)
        }
        for waiter in waiters { waiter.resume(returning: room) }
        if retry {
            channel.eventLoop.scheduleTask(in: .milliseconds(10)) { self.drain() }
        }
        if let close {
            // The close handshake belongs to hummingbird-websocket's handler (it must know a
            // close was sent); it is async and may wait for the socket, so a short task of its
            // own does it. The frames written above are already ahead of it on the event loop.
            // Whatever the peer does, the TCP connection ends `closeTimeout` from now.
            let closer = self.closer
            let handover = Task { await closer(close.code, close.reason) }
            state.withLock { $0.closeHandover = handover }
            let channel = self.channel
            channel.eventLoop.scheduleTask(in: timeouts.close) { channel.close(promise: nil) }
        }
    }

    /// Called by the connection's task as it ends (its inbound side is over): a close asked for
    /// and not yet handed to the WebSocket layer is handed over now, after what was queued
    /// before it, and waited for (at most the close timeout). Otherwise the WebSocket layer,
    /// seeing the handler return, would close with 1000 first, and the client would never
    /// learn why it was closed (a text frame that is not UTF-8: 1007).
    func finishClosing() async {
        let (frames, close, handover) = state.withLock { state -> ([ByteBuffer], (code: CloseCode, reason: String)?, Task<Void, Never>?) in
            guard case .closing(_, _, false) = state.queue.phase else { return ([], nil, state.closeHandover) }
            let frames = state.queue.takeFrames()
            state.queue.settle(unwritten: [])
            return (frames, state.queue.takeCloseToHandOver(), nil)
        }
        if let handover { return await handover.value }
        guard let close else { return }
        for frame in frames { channel.write(WebSocketFrame(fin: true, opcode: .binary, data: frame), promise: nil) }
        if !frames.isEmpty { channel.flush() }
        let channel = self.channel
        channel.eventLoop.scheduleTask(in: timeouts.close) { channel.close(promise: nil) }
        await closer(close.code, close.reason)
    }
}
