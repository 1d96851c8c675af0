import Synchronization

/// Hands every change to every open `changes()` stream. Streams are unbounded: changes are
/// rare and small, and dropping one would leave a node with a stale key or tenant.
final class MetadataChangeBroadcaster: Sendable {
    private struct State {
        var nextID = 0
        var subscribers: [Int: (owner: ObjectIdentifier, continuation: AsyncStream<MetadataChange>.Continuation)] = [:]
    }

    private let state = Mutex(State())

    /// A new stream, ended by `finish(owner:)` or when its consumer goes away.
    func subscribe(owner: ObjectIdentifier) -> AsyncStream<MetadataChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: MetadataChange.self)
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = (owner, continuation)
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ change: MetadataChange) {
        let continuations = state.withLock { $0.subscribers.values.map(\.continuation) }
        for continuation in continuations { continuation.yield(change) }
    }

    /// Ends the streams `owner` handed out (its store shut down).
    func finish(owner: ObjectIdentifier) {
        let ended = state.withLock { state in
            let ids = state.subscribers.filter { $0.value.owner == owner }.map(\.key)
            return ids.compactMap { state.subscribers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ended { continuation.finish() }
    }
}
