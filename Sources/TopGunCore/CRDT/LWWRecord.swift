/// One key's state in a last-write-wins map (protocol.md §3.1).
public struct LWWRecord: Sendable, Hashable {
    /// The value as stored: decoded, or packed as it arrived (see `PackedValue`); nil for a
    /// tombstone (a delete that is kept so it can win merges).
    public var payload: RecordValue?
    public var timestamp: Timestamp
    /// Time to live in milliseconds from `timestamp.millis`; nil means forever.
    public var ttlMs: Double?

    @inlinable
    public init(value: DataValue?, timestamp: Timestamp, ttlMs: Double? = nil) {
        self.payload = value.map(RecordValue.decoded)
        self.timestamp = timestamp
        self.ttlMs = ttlMs
    }

    @inlinable
    public init(payload: RecordValue?, timestamp: Timestamp, ttlMs: Double? = nil) {
        self.payload = payload
        self.timestamp = timestamp
        self.ttlMs = ttlMs
    }

    /// The value, or nil for a tombstone. A packed value is decoded on each read.
    @inlinable
    public var value: DataValue? {
        get { payload?.dataValue }
        set { payload = newValue.map(RecordValue.decoded) }
    }

    @inlinable
    public var isTombstone: Bool { payload == nil }

    /// Equal when the values are, however each is kept.
    public static func == (lhs: LWWRecord, rhs: LWWRecord) -> Bool {
        lhs.timestamp == rhs.timestamp && lhs.ttlMs == rhs.ttlMs && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(value)
        hasher.combine(timestamp)
        hasher.combine(ttlMs)
    }

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
