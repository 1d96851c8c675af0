/// What a `WriteBehindQueue` reports for `/ready` and `/metrics`.
public struct WriteBehindStatus: Sendable, Equatable {
    /// Rows not yet committed: queued, being flushed, or waiting for room (back-pressure).
    public var pendingCount: Int
    /// False while the last flush failed (the storage is down or refusing): PERSISTED acks
    /// are held until a flush succeeds again.
    public var isHealthy: Bool
    /// Why the last flush failed, while it is the latest outcome.
    public var lastError: String?
    /// Failed flushes in a row (0 when healthy).
    public var consecutiveFailures: Int
    /// Every ticket up to this one is durable.
    public var durableThrough: FlushTicket
    /// The latest ticket handed out.
    public var lastTicket: FlushTicket

    public init(pendingCount: Int, isHealthy: Bool, lastError: String?, consecutiveFailures: Int, durableThrough: FlushTicket, lastTicket: FlushTicket) {
        self.pendingCount = pendingCount
        self.isHealthy = isHealthy
        self.lastError = lastError
        self.consecutiveFailures = consecutiveFailures
        self.durableThrough = durableThrough
        self.lastTicket = lastTicket
    }
}
