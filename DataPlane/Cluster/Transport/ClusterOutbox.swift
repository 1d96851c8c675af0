import NIOCore
import Synchronization

/// The frames waiting to be written to one connection, bounded in bytes, and the drain that
/// writes them: each drain takes every frame queued and writes them with one flush, so a burst
/// of messages to a peer costs one flush rather than one each.
///
/// Room: a frame is admitted when no frame waits before it and the queued bytes plus its size
/// stay within `limit` (or the queue is empty, so one frame larger than the limit can still
/// go). Bytes count until the channel has taken them, and the channel takes no more while the
/// socket does not drain (NIO's writability), so a peer that stops reading fills this queue;
/// then callers wait up to their `maxWait` for room, in order, and are refused with `.full`.
/// Memory per connection is thus about `limit` plus the channel's own write buffer.
final class ClusterOutbox: Sendable {
    enum Refusal: Error, Sendable, Equatable {
        /// No room within the wait.
        case full
        /// The connection is gone (or going).
        case closed
    }

    private struct State: Sendable {
        var ready: [ByteBuffer] = []
        var queuedBytes = 0
        /// Frames waiting for room, oldest first.
        var parked: [(id: UInt64, frame: ByteBuffer)] = []
        var waiters = ClusterWaiterTable<Void>()
        var timers: [UInt64: Scheduled<Void>] = [:]
        var writer: CheckedContinuation<[ByteBuffer]?, Never>?
        var isClosed = false
    }

    /// What to do once the lock is released.
    private struct Wakeups {
        var resumptions: [ClusterWaiterTable<Void>.Resumption] = []
        var timers: [Scheduled<Void>] = []
        var writer: (CheckedContinuation<[ByteBuffer]?, Never>, [ByteBuffer]?)?

        func perform() {
            for timer in timers { timer.cancel() }
            for resumption in resumptions { resumption.resume() }
            if let (continuation, batch) = writer { continuation.resume(returning: batch) }
        }
    }

    let limit: Int
    private let eventLoop: any EventLoop
    private let state = Mutex(State())

    /// - Parameter eventLoop: where the room timers run.
    init(limit: Int, eventLoop: any EventLoop) {
        self.limit = limit
        self.eventLoop = eventLoop
    }

    var queuedBytes: Int { state.withLock { $0.queuedBytes } }

    var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Frames waiting for room.
    var waitingFrames: Int { state.withLock { $0.parked.count } }

    /// Queues `frame`; when there is no room, waits for it up to `maxWait` (nil: as long as it
    /// takes, until cancelled or closed).
    func enqueue(_ frame: ByteBuffer, maxWait: TimeAmount?) async throws {
        enum Admission {
            case admitted(Wakeups)
            case parked(UInt64)
            case refused(Refusal)
        }
        let size = frame.readableBytes
        let admission = state.withLock { state -> Admission in
            if state.isClosed { return .refused(.closed) }
            if state.parked.isEmpty, Self.fits(size, queued: state.queuedBytes, limit: limit) {
                state.queuedBytes += size
                state.ready.append(frame)
                var wakeups = Wakeups()
                Self.wakeWriter(&state, &wakeups)
                return .admitted(wakeups)
            }
            if let maxWait, maxWait <= .zero { return .refused(.full) }
            let id = state.waiters.register()
            state.parked.append((id, frame))
            return .parked(id)
        }
        switch admission {
        case .admitted(let wakeups):
            wakeups.perform()
        case .refused(let refusal):
            throw refusal
        case .parked(let id):
            if let maxWait {
                let timer = eventLoop.scheduleTask(in: maxWait) { [weak self] () -> Void in self?.unpark(id, with: Refusal.full) }
                let kept = state.withLock { state in
                    guard state.parked.contains(where: { $0.id == id }) else { return false }
                    state.timers[id] = timer
                    return true
                }
                if !kept { timer.cancel() }
            }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    if let result = state.withLock({ $0.waiters.attach(id, continuation) }) {
                        continuation.resume(with: result)
                    }
                }
            } onCancel: {
                self.unpark(id, with: CancellationError())
            }
        }
    }

    /// The frames to write next, all of them; nil once closed (or the drain is cancelled).
    func nextBatch() async -> [ByteBuffer]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[ByteBuffer]?, Never>) in
                let now: [ByteBuffer]?? = state.withLock { state in
                    if !state.ready.isEmpty {
                        defer { state.ready = [] }
                        return .some(state.ready)
                    }
                    // Checked under the lock: a cancellation handler that ran before this
                    // found no writer to resume.
                    if state.isClosed || Task.isCancelled { return .some(nil) }
                    state.writer = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let writer = state.withLock { state in
                defer { state.writer = nil }
                return state.writer
            }
            writer?.resume(returning: nil)
        }
    }

    /// The channel took `bytes` of the last batch: make room, admit waiting frames.
    func written(_ bytes: Int) {
        let wakeups = state.withLock { state in
            state.queuedBytes = max(0, state.queuedBytes - bytes)
            return Self.admitParked(&state, limit: limit)
        }
        wakeups.perform()
    }

    /// Writes batches to `outbound` until closed or cancelled, one flush per batch.
    func drain(into outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        while let batch = await nextBatch() {
            var bytes = 0
            for frame in batch { bytes += frame.readableBytes }
            try await outbound.write(contentsOf: batch)
            written(bytes)
        }
    }

    /// Drops every queued frame and refuses waiting and later callers with `.closed`.
    func close() {
        let wakeups = state.withLock { state in
            var wakeups = Wakeups()
            guard !state.isClosed else { return wakeups }
            state.isClosed = true
            state.ready = []
            state.parked = []
            state.queuedBytes = 0
            wakeups.resumptions = state.waiters.resolveAll(with: .failure(Refusal.closed))
            wakeups.timers = Array(state.timers.values)
            state.timers = [:]
            if let writer = state.writer {
                state.writer = nil
                wakeups.writer = (writer, nil)
            }
            return wakeups
        }
        wakeups.perform()
    }

    /// A waiting frame gives up (its wait ran out, or its caller was cancelled).
    private func unpark(_ id: UInt64, with error: any Error) {
        let wakeups = state.withLock { state -> Wakeups in
            guard let index = state.parked.firstIndex(where: { $0.id == id }) else { return Wakeups() }
            state.parked.remove(at: index)
            // Frames behind a large one that gave up may fit now.
            var wakeups = Self.admitParked(&state, limit: limit)
            if let resumption = state.waiters.resolve(id, with: .failure(error)) { wakeups.resumptions.append(resumption) }
            if let timer = state.timers.removeValue(forKey: id) { wakeups.timers.append(timer) }
            return wakeups
        }
        wakeups.perform()
    }

    private static func fits(_ size: Int, queued: Int, limit: Int) -> Bool {
        queued == 0 || queued + size <= limit
    }

    private static func admitParked(_ state: inout State, limit: Int) -> Wakeups {
        var wakeups = Wakeups()
        while let first = state.parked.first, fits(first.frame.readableBytes, queued: state.queuedBytes, limit: limit) {
            state.parked.removeFirst()
            state.queuedBytes += first.frame.readableBytes
            state.ready.append(first.frame)
            if let resumption = state.waiters.resolve(first.id, with: .success(())) { wakeups.resumptions.append(resumption) }
            if let timer = state.timers.removeValue(forKey: first.id) { wakeups.timers.append(timer) }
        }
        wakeWriter(&state, &wakeups)
        return wakeups
    }

    private static func wakeWriter(_ state: inout State, _ wakeups: inout Wakeups) {
        guard !state.ready.isEmpty, let writer = state.writer else { return }
        state.writer = nil
        wakeups.writer = (writer, state.ready)
        state.ready = []
    }
}
