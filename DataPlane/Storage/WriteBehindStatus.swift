import TopGunCore

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
    /// Every ticket up to this sequence is durable in every partition.
    public var durableThrough: UInt64
    /// The latest ticket's sequence.
    public var lastTicket: UInt64
    /// Partitions whose rows this node no longer writes (`WriteBehindQueue.fence`).
    public var fencedPartitions: PartitionSet

    public init(
        pendingCount: Int, isHealthy: Bool, lastError: String?, consecutiveFailures: Int, durableThrough: UInt64, lastTicket: UInt64,
        fencedPartitions: PartitionSet = PartitionSet()
    ) {
        self.pendingCount = pendingCount
        self.isHealthy = isHealthy
        self.lastError = lastError
        self.consecutiveFailures = consecutiveFailures
        self.durableThrough = durableThrough
        self.lastTicket = lastTicket
        self.fencedPartitions = fencedPartitions
    }
}
