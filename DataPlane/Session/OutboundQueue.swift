import TopGunWire
import NIOCore

/// The frames one connection has produced and its socket has not taken yet, bounded in
/// bytes, and the close that ends them: a pure state machine (`ChannelSink` performs what it
/// decides on the channel's event loop).
///
/// - Frames are counted by their encoded bytes. A frame is queued while fewer than
///   `maxQueuedBytes` are queued, so the queue never holds more than the bound plus one frame.
/// - A frame arriving while the queue is at or over the bound means the client does not read
///   what it is sent (pushes accumulate faster than it drains them): the queue is dropped at
///   once and the connection closes with 1013.
/// - Responses wait for room instead (`hasRoom`): the connection stops reading requests while
///   its queue is above `roomBytes`, so a client that asks for much and reads little
///   holds back its own requests, not the server's memory.
/// - After a close nothing more is queued; what was queued before it is written first.
struct OutboundQueue {
    struct Limits: Sendable, Equatable {
        /// The most bytes queued for one connection (plus at most one frame).
        var maxQueuedBytes: Int
        /// Requests and result pages proceed while at most this many bytes are queued.
        var roomBytes: Int

        init(maxQueuedBytes: Int) {
            self.maxQueuedBytes = max(1, maxQueuedBytes)
            self.roomBytes = max(1, maxQueuedBytes / 4)
        }
    }

    enum Phase: Equatable {
        case open
        /// A close was asked for; `handedOver` once its frame went to the WebSocket layer.
        case closing(code: CloseCode, reason: String, handedOver: Bool)
        /// The connection is gone: nothing is queued or written any more.
        case finished
    }

    enum EnqueueResult: Equatable {
        case queued
        /// The connection is closing or gone: the frame is dropped.
        case refused
        /// The bound was passed: the queue was emptied and a 1013 close is pending.
        case overflowed
    }

    let limits: Limits
    private(set) var phase: Phase = .open
    /// An array, not a ring: the drain takes all of it at once (an empty array allocates
    /// nothing, which an idle connection's queue, and each drain, then cost).
    private(set) var frames: [ByteBuffer] = []
    /// Bytes of `frames`, plus those taken out for writing and not settled yet.
    private(set) var queuedBytes = 0
    /// Bytes taken out by `takeFrames` and not settled yet.
    private var bytesBeingWritten = 0
    private(set) var overflowed = false

    init(limits: Limits) {
        self.limits = limits
    }

    /// The reason given when a client stops reading.
    static let slowConsumerReason = "slow consumer: outbound queue over its byte bound"

    var acceptsFrames: Bool { phase == .open }

    var isClosing: Bool { phase != .open }

    /// Whether a request may be answered (or a result page produced) now.
    var hasRoom: Bool { phase == .open && queuedBytes <= limits.roomBytes }

    mutating func enqueue(_ frame: ByteBuffer) -> EnqueueResult {
        guard phase == .open else { return .refused }
        guard queuedBytes < limits.maxQueuedBytes else {
            // Dropped at once: a client that does not read gets nothing more, and its frames
            // must not outlive the decision.
            overflowed = true
            frames.removeAll()
            queuedBytes = bytesBeingWritten
            phase = .closing(code: .tryAgainLater, reason: Self.slowConsumerReason, handedOver: false)
            return .overflowed
        }
        frames.append(frame)
        queuedBytes += frame.readableBytes
        return .queued
    }

    /// Asks for a close after what is queued; false when the connection is already closing.
    mutating func close(_ code: CloseCode, reason: String) -> Bool {
        guard phase == .open else { return false }
        phase = .closing(code: code, reason: CloseReason.fitted(reason), handedOver: false)
        return true
    }

    /// Takes the queued frames out for writing; they still count against the bound until
    /// `settle` says which were written.
    mutating func takeFrames() -> [ByteBuffer] {
        var taken: [ByteBuffer] = []
        swap(&taken, &frames)
        bytesBeingWritten = queuedBytes
        return taken
    }

    /// After a write pass: `unwritten` (the tail of what `takeFrames` gave, the socket could not
    /// take it yet) goes back in front of anything queued meanwhile.
    mutating func settle(unwritten: ArraySlice<ByteBuffer>) {
        let unwrittenBytes = unwritten.reduce(0) { $0 + $1.readableBytes }
        queuedBytes -= bytesBeingWritten - unwrittenBytes
        bytesBeingWritten = 0
        guard phase != .finished, !overflowed else {
            queuedBytes = frames.reduce(0) { $0 + $1.readableBytes }
            return
        }
        if !unwritten.isEmpty {
            frames = Array(unwritten) + frames
        }
    }

    /// The close to hand to the WebSocket layer now (once): after the queue is written.
    mutating func takeCloseToHandOver() -> (code: CloseCode, reason: String)? {
        guard case .closing(let code, let reason, false) = phase, frames.isEmpty else { return nil }
        phase = .closing(code: code, reason: reason, handedOver: true)
        return (code, reason)
    }

    /// The socket is gone: drops what is queued.
    mutating func finish() {
        phase = .finished
        frames.removeAll()
        queuedBytes = bytesBeingWritten
    }
}
