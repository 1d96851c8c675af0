/// Tuning of a `WriteBehindQueue`.
public struct WriteBehindConfiguration: Sendable, Equatable {
    /// Flush as soon as this many rows are pending, without waiting for the interval.
    public var maxBatch: Int
    /// Flush rows at the latest this long after the oldest pending one arrived (the group
    /// commit window: a PERSISTED ack waits about this long plus one commit).
    public var flushInterval: Duration
    /// Back-pressure: `enqueue` waits while this many rows are pending or being flushed.
    public var maxPending: Int
    /// Most rows one `store()` call receives. The default takes everything pending (that is
    /// not in another flush), so a flush is one group commit; a lower value splits a large
    /// backlog into several.
    public var maxFlushRows: Int
    /// Flushes that may run at once, on rows that do not overlap: while the database commits
    /// one batch, the next is encoded and sent (2 pipelines well; 1 makes flushes strictly
    /// sequential).
    public var maxConcurrentFlushes: Int
    /// First wait after a failed flush; doubled after each further failure up to `maxBackoff`.
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    /// A `store()` that has not returned after this long counts as failed (its rows stay
    /// pending and are written again: upserts of CRDT states are idempotent).
    public var storeTimeout: Duration
    /// How long `run()` drains at a graceful shutdown before it gives up.
    public var drainTimeout: Duration

    public init(
        maxBatch: Int = 2_000,
        flushInterval: Duration = .milliseconds(5),
        maxPending: Int = 100_000,
        maxFlushRows: Int = .max,
        maxConcurrentFlushes: Int = 2,
        initialBackoff: Duration = .milliseconds(10),
        maxBackoff: Duration = .seconds(1),
        storeTimeout: Duration = .seconds(10),
        drainTimeout: Duration = .seconds(10)
    ) {
        self.maxBatch = max(1, maxBatch)
        self.flushInterval = flushInterval
        self.maxPending = max(1, maxPending)
        self.maxFlushRows = max(1, maxFlushRows)
        self.maxConcurrentFlushes = max(1, maxConcurrentFlushes)
        self.initialBackoff = initialBackoff
        self.maxBackoff = max(initialBackoff, maxBackoff)
        self.storeTimeout = storeTimeout
        self.drainTimeout = drainTimeout
    }
}
