import Synchronization

/// The handler slots of one inbound connection. Only its reader waits for a slot; closing
/// (the connection closed) wakes it with an error, so a reader stuck behind handlers that
/// never finish still notices that the peer is gone.
final class ClusterRequestSlots: Sendable {
    struct Closed: Error {}

    private struct State: Sendable {
        var available: Int
        var waiter: CheckedContinuation<Void, any Error>?
        var isClosed = false
    }

    private let state: Mutex<State>

    init(_ count: Int) {
        state = Mutex(State(available: max(1, count)))
    }

    func acquire() async throws {
        let acquired = try state.withLock { state throws -> Bool in
            if state.isClosed { throw Closed() }
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        if acquired { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { state in
                    if state.isClosed { return .failure(Closed()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.available > 0 {
                        state.available -= 1
                        return .success(())
                    }
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if let waiter = state.waiter {
                // The slot passes straight to the waiting reader.
                state.waiter = nil
                return waiter
            }
            state.available += 1
            return nil
        }
        waiter?.resume()
    }

    func close() {
        let waiter = state.withLock { state in
            state.isClosed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: Closed())
    }
}
