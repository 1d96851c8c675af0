/// Suspended callers by id, for waits that whoever holds the owner's lock resolves.
///
/// A wait is registered under the lock first and its continuation attached afterwards, so
/// the resolution (a response, a timeout, a close, a cancellation) may come in between: it is
/// kept until the continuation arrives. Resolving hands back the continuation to resume
/// after the lock is released, never under it.
struct ClusterWaiterTable<Value: Sendable>: Sendable {
    struct Resumption: Sendable {
        let continuation: CheckedContinuation<Value, any Error>
        let result: Result<Value, any Error>

        func resume() { continuation.resume(with: result) }
    }

    private enum Slot: Sendable {
        case registered
        case attached(CheckedContinuation<Value, any Error>)
        case resolved(Result<Value, any Error>)
    }

    private var slots: [UInt64: Slot] = [:]
    private var lastID: UInt64 = 0

    var count: Int { slots.count }

    mutating func register() -> UInt64 {
        lastID &+= 1
        slots[lastID] = .registered
        return lastID
    }

    func contains(_ id: UInt64) -> Bool { slots[id] != nil }

    /// Attaches the caller's continuation; returns the result to resume it with at once when
    /// the wait was resolved already (or is unknown: then it was dropped, and the caller is
    /// told it was cancelled).
    mutating func attach(_ id: UInt64, _ continuation: CheckedContinuation<Value, any Error>) -> Result<Value, any Error>? {
        switch slots[id] {
        case .registered:
            slots[id] = .attached(continuation)
            return nil
        case .resolved(let result):
            slots[id] = nil
            return result
        case .attached, nil:
            return .failure(CancellationError())
        }
    }

    /// Resolves one wait; nil when there is nothing to resume now (unknown, already resolved,
    /// or not attached yet: then the result waits for `attach`).
    mutating func resolve(_ id: UInt64, with result: Result<Value, any Error>) -> Resumption? {
        switch slots[id] {
        case .registered:
            slots[id] = .resolved(result)
            return nil
        case .attached(let continuation):
            slots[id] = nil
            return Resumption(continuation: continuation, result: result)
        case .resolved, nil:
            return nil
        }
    }

    mutating func resolveAll(with result: Result<Value, any Error>) -> [Resumption] {
        var resumptions: [Resumption] = []
        for id in Array(slots.keys) {
            if let resumption = resolve(id, with: result) { resumptions.append(resumption) }
        }
        return resumptions
    }

    /// Forgets a wait whose caller gave up before attaching.
    mutating func remove(_ id: UInt64) {
        slots[id] = nil
    }
}
