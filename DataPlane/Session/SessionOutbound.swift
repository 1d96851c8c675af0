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
/// The queue is bounded: a client that does not read is disconnected (close 1013) rather than
/// allowed to grow the server's memory without limit; it reconnects and catches up through
/// Merkle sync.
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

    public let id: SessionID
    private let sink: Sink
    /// Set when the stream's buffer overflowed (the channel sink keeps its own).
    private let streamOverflowed = Atomic<Bool>(false)
    /// Payload bytes handed to the socket since the last `takeBytesSent` (usage metering).
    private let bytesSent = Atomic<Int>(0)

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
    /// hummingbird-websocket's.
    public static func channel(
        _ channel: any Channel, closingThrough writer: WebSocketOutboundWriter, id: SessionID = .next(), capacity: Int = 4096
    ) -> SessionOutbound {
        self.channel(channel, id: id, capacity: capacity) { code, reason in
            try? await writer.close(WebSocketErrorCode(codeNumber: Int(code.rawValue)), reason: reason)
        }
    }

    /// An outbound side that writes binary frames into `channel` and closes with `closer`.
    static func channel(
        _ channel: any Channel, id: SessionID = .next(), capacity: Int = 4096, closer: @escaping @Sendable (CloseCode, String) async -> Void
    ) -> SessionOutbound {
        SessionOutbound(id: id, sink: .channel(ChannelSink(channel: channel, capacity: capacity, closer: closer)))
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
            continuation.yield(.close(code, reason))
            continuation.finish()
        case .channel(let sink):
            sink.close(code, reason: reason)
        }
    }

    /// Accepts nothing more; what is queued is still written (the socket may already be gone).
    public func finish() {
        switch sink {
        case .stream(let continuation): continuation.finish()
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
public struct FanOutBatch {
    private var groups: [ObjectIdentifier: (loop: any EventLoop, sinks: [ChannelSink])] = [:]

    public init() {}

    /// Sessions drained by one event-loop job: a loop starts writing while the rest is queued.
    static let chunk = 32

    mutating func add(_ sink: ChannelSink) {
        let loop = sink.channel.eventLoop
        let id = ObjectIdentifier(loop)
        groups[id, default: (loop, [])].sinks.append(sink)
        if let sinks = groups[id]?.sinks, sinks.count >= Self.chunk {
            groups[id] = nil
            Self.drain(sinks, on: loop)
        }
    }

    /// Starts writing what the batch queued, and empties the batch.
    public mutating func flush() {
        for (_, group) in groups { Self.drain(group.sinks, on: group.loop) }
        groups = [:]
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
/// The queue is a small mutex-guarded array: producers (actors, the inbound loop, other
/// connections) may be on any thread, and the lock is held only to append or to take the batch.
final class ChannelSink: Sendable {
    private struct State {
        var queue: [ByteBuffer] = []
        var drainScheduled = false
        /// No more frames are accepted (closing, finished or overflowed).
        var closed = false
        /// A close asked for and not yet handed to the WebSocket handler.
        var pendingClose: (code: CloseCode, reason: String)?
        var overflowed = false
    }

    let channel: any Channel
    let capacity: Int
    /// Starts the WebSocket close handshake (hummingbird-websocket's handler must know a close
    /// was sent, so it goes through its writer).
    let closer: @Sendable (CloseCode, String) async -> Void
    private let state = Mutex(State())

    init(channel: any Channel, capacity: Int, closer: @escaping @Sendable (CloseCode, String) async -> Void) {
        self.channel = channel
        self.capacity = capacity
        self.closer = closer
    }

    var didOverflow: Bool { state.withLock { $0.overflowed } }

    func send(_ buffer: ByteBuffer) {
        if enqueue(buffer) { scheduleDrain() }
    }

    /// Queues a frame without scheduling the drain; returns whether the caller claimed the
    /// drain and must run it (`send` does at once; `FanOutBatch` groups drains by event loop).
    func enqueue(_ buffer: ByteBuffer) -> Bool {
        state.withLock { state -> Bool in
            guard !state.closed else { return false }
            if state.queue.count >= capacity {
                // What is queued still goes out, then close 1013 (as the bounded stream did).
                state.overflowed = true
                state.closed = true
                state.pendingClose = (.tryAgainLater, "slow consumer: outbound queue full")
            } else {
                state.queue.append(buffer)
            }
            return Self.claimDrain(&state)
        }
    }

    func close(_ code: CloseCode, reason: String) {
        let schedule = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.closed = true
            state.pendingClose = (code, reason)
            return Self.claimDrain(&state)
        }
        if schedule { scheduleDrain() }
    }

    func finish() {
        state.withLock { $0.closed = true }
    }

    private static func claimDrain(_ state: inout State) -> Bool {
        guard !state.drainScheduled else { return false }
        state.drainScheduled = true
        return true
    }

    private func scheduleDrain() {
        channel.eventLoop.execute { self.drain() }
    }

    /// On the event loop: writes what is queued, flushes once, then hands over a pending close.
    /// While the socket cannot take more (the client reads slowly), frames stay queued (and
    /// count against the bound) and the drain looks again shortly.
    func drain() {
        let writable = channel.isWritable || !channel.isActive
        let (frames, close) = state.withLock { state -> ([ByteBuffer], (code: CloseCode, reason: String)?) in
            if !writable && state.pendingClose == nil { return ([], nil) }
            state.drainScheduled = false
            let frames = state.queue
            state.queue = []
            let close = state.pendingClose
            state.pendingClose = nil
            return (frames, close)
        }
        if !writable && close == nil {
            channel.eventLoop.scheduleTask(in: .milliseconds(10)) { self.drain() }
            return
        }
        if !frames.isEmpty {
            for frame in frames {
                channel.write(WebSocketFrame(fin: true, opcode: .binary, data: frame), promise: nil)
            }
            channel.flush()
        }
        if let close {
            // The close handshake belongs to hummingbird-websocket's handler (it must know a
            // close was sent); it is async, and rare, so a short task of its own does it. The
            // frames written above are already ahead of it on the event loop.
            let closer = self.closer
            Task { await closer(close.code, close.reason) }
        }
    }
}
