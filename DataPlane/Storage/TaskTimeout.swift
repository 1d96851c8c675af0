/// Thrown by `withStorageTimeout` when the operation did not finish in time.
struct StorageTimeoutError: Error, Sendable, CustomStringConvertible {
    var limit: Duration
    var description: String { "no answer within \(limit)" }
}

/// Runs `operation`, cancelling it and throwing `StorageTimeoutError` after `limit`.
/// Returns as soon as either happens, so a call that ignores cancellation is left to finish
/// in the background rather than holding its caller.
func withStorageTimeout<Result: Sendable>(
    _ limit: Duration,
    _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let race = TimeoutRace<Result>()
    let work = Task {
        let result: Swift.Result<Result, any Error>
        do {
            result = .success(try await operation())
        } catch {
            result = .failure(error)
        }
        await race.finish(with: result)
    }
    let timer = Task {
        do {
            try await Task.sleep(for: limit)
        } catch {
            return  // the operation finished first
        }
        await race.finish(with: .failure(StorageTimeoutError(limit: limit)))
    }
    let result = await withTaskCancellationHandler {
        await race.value()
    } onCancel: {
        work.cancel()
        timer.cancel()
        Task { await race.finish(with: .failure(CancellationError())) }
    }
    work.cancel()
    timer.cancel()
    return try result.get()
}

/// The first result of an operation and its timer; later ones are dropped.
private actor TimeoutRace<Value: Sendable> {
    private var result: Result<Value, any Error>?
    private var waiter: CheckedContinuation<Result<Value, any Error>, Never>?

    func finish(with result: Result<Value, any Error>) {
        guard self.result == nil else { return }
        self.result = result
        waiter?.resume(returning: result)
        waiter = nil
    }

    func value() async -> Result<Value, any Error> {
        if let result { return result }
        return await withCheckedContinuation { waiter = $0 }
    }
}
