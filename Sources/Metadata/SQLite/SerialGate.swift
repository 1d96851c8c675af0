import Synchronization

/// Lets one task at a time through, in arrival order, across suspension points. A SQLite
/// connection runs one statement at a time but knows nothing of tasks: without this, two
/// tasks' transactions would interleave on it.
final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Runs `body` alone. Waiting is not cancellable (the wait is short and bounded by the
    /// work queued before), so every caller that enters also leaves.
    func run<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> sending T) async throws -> sending T {
        await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    private func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()  // the gate stays busy: ownership passes straight to the next waiter
    }
}
