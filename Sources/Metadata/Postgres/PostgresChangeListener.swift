import Logging
import PostgresNIO
import Synchronization

/// Holds a dedicated connection in `LISTEN topgun_metadata` and hands each notification to the
/// broadcaster. When the connection is lost it reconnects with exponential backoff (0.1 s up
/// to 5 s) and, once listening again, publishes `.resynchronize`: whatever happened in the gap
/// was not heard, so subscribers re-read. A `SELECT 1` every `heartbeat` detects a silently
/// dead connection.
final class PostgresChangeListener: Sendable {
    /// What the listener connection calls itself in `pg_stat_activity.application_name`.
    static let applicationName = "topgun-metadata-listener"

    private let endpoint: PostgresEndpoint
    private let channel: String
    private let broadcaster: MetadataChangeBroadcaster
    private let logger: Logger
    private let connectTimeout: Duration
    private let heartbeat: Duration
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(endpoint: PostgresEndpoint, channel: String, broadcaster: MetadataChangeBroadcaster, logger: Logger,
         connectTimeout: Duration, heartbeat: Duration = .seconds(15)) {
        self.endpoint = endpoint
        self.channel = channel
        self.broadcaster = broadcaster
        self.logger = logger
        self.connectTimeout = connectTimeout
        self.heartbeat = heartbeat
    }

    /// Starts listening and returns once the first `LISTEN` is in place (so no change made
    /// after this returns is missed), or throws if it could not be set up.
    func start() async throws {
        let (ready, readyContinuation) = AsyncStream.makeStream(of: Result<Void, any Error>.self)
        let task = Task { await self.listenLoop(ready: readyContinuation) }
        self.task.withLock { $0 = task }
        var iterator = ready.makeAsyncIterator()
        guard let outcome = await iterator.next() else { throw CancellationError() }
        if case .failure(let error) = outcome {
            task.cancel()
            throw error
        }
    }

    /// Stops listening and closes the connection.
    func stop() async {
        let task = self.task.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
    }

    private func listenLoop(ready: AsyncStream<Result<Void, any Error>>.Continuation) async {
        var listeningBefore = false
        var failures = 0
        while !Task.isCancelled {
            do {
                let configuration = try endpoint.connectionConfiguration(connectTimeout: connectTimeout, applicationName: Self.applicationName)
                let connection = try await PostgresConnection.connect(
                    configuration: configuration, id: PostgresConnectionIDs.next(), logger: logger)
                do {
                    try await connection.listen(on: channel) { notifications in
                        failures = 0
                        if listeningBefore {
                            logger.info("metadata change stream reconnected; subscribers resynchronize")
                            broadcaster.publish(.resynchronize)
                        } else {
                            ready.yield(.success(()))
                            ready.finish()
                        }
                        listeningBefore = true
                        try await self.relay(notifications, connection: connection)
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if !listeningBefore {
                    // At start-up, fail fast: the caller reports a clear error.
                    ready.yield(.failure(MetadataError.unavailable(
                        "cannot LISTEN on PostgreSQL at \(endpoint): \(PostgresErrors.describe(error))")))
                    ready.finish()
                    return
                }
                if Task.isCancelled { return }
                logger.warning("metadata change stream lost; reconnecting", metadata: ["error": "\(PostgresErrors.describe(error))"])
            }
            if Task.isCancelled { return }
            let backoff = min(0.1 * Double(1 << min(failures, 6)), 5.0) * Double.random(in: 0.8...1.2)
            failures += 1
            try? await Task.sleep(for: .seconds(backoff))
        }
    }

    /// Relays notifications until the connection fails (throws) or the task is cancelled.
    private func relay(_ notifications: PostgresNotificationSequence, connection: PostgresConnection) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications {
                    let change = MetadataNotification.parse(notification.payload)?.change ?? .resynchronize
                    self.broadcaster.publish(change)
                }
                // The sequence ends only when listening stops; if we are not cancelled, the
                // connection went away without an error: treat it as one, to reconnect.
                if !Task.isCancelled { throw ListenEnded() }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.heartbeat)
                    try await withDeadline(self.connectTimeout) {
                        _ = try await connection.query("SELECT 1", logger: self.logger).collect()
                    }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

/// The notification sequence ended while we still wanted it.
struct ListenEnded: Error, CustomStringConvertible {
    var description: String { "the LISTEN connection ended" }
}
