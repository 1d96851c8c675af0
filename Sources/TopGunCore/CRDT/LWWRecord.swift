/// One key's state in a last-write-wins map (protocol.md §3.1).
public struct LWWRecord: Sendable, Hashable {
    /// The value, or nil for a tombstone (a delete that is kept so it can win merges).
    public var value: DataValue?
    public var timestamp: Timestamp
    /// Time to live in milliseconds from `timestamp.millis`; nil means forever.
    public var ttlMs: Double?

    @inlinable
    public init(value: DataValue?, timestamp: Timestamp, ttlMs: Double? = nil) {
        self.value = value
        self.timestamp = timestamp
        self.ttlMs = ttlMs
    }

    @inlinable
    public var isTombstone: Bool { value == nil }

    /// Expired when `millis + ttlMs < now` (strictly), as the client computes it.
    @inlinable
    public func isExpired(nowMillis: Int64) -> Bool {
        guard let ttlMs else { return false }
        return Double(timestamp.millis) + ttlMs < Double(nowMillis)
    }

    /// Whether this record wins over `other`: only a strictly newer timestamp wins, so an
    /// equal one keeps the incumbent and re-delivery changes nothing.
    @inlinable
    public func supersedes(_ other: LWWRecord) -> Bool {
        timestamp > other.timestamp
    }
}
