/// One tagged value under a key of an observed-remove map (protocol.md §3.2).
public struct ORMapRecord: Sendable, Hashable {
    public var value: DataValue
    public var timestamp: Timestamp
    /// Unique per add: the string form of the add's timestamp, `millis:counter:nodeId`.
    public var tag: String
    public var ttlMs: Double?

    @inlinable
    public init(value: DataValue, timestamp: Timestamp, tag: String, ttlMs: Double? = nil) {
        self.value = value
        self.timestamp = timestamp
        self.tag = tag
        self.ttlMs = ttlMs
    }

    /// Tags compare byte for byte, as the map keeps them apart (`ORMap`).
    public static func == (lhs: ORMapRecord, rhs: ORMapRecord) -> Bool {
        lhs.tag.hasSameUTF8(as: rhs.tag) && lhs.timestamp == rhs.timestamp && lhs.ttlMs == rhs.ttlMs && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(tag)
        hasher.combine(timestamp)
        hasher.combine(ttlMs)
        hasher.combine(value)
    }

    @inlinable
    public func isExpired(nowMillis: Int64) -> Bool {
        guard let ttlMs else { return false }
        return Double(timestamp.millis) + ttlMs < Double(nowMillis)
    }
}

/// Everything one key holds in an OR-Map, as OR-Map sync exchanges it: the live records
/// and the tombstoned tags.
public struct ORMapEntry: Sendable, Hashable {
    public var key: String
    public var records: [ORMapRecord]
    public var tombstones: [String]

    @inlinable
    public init(key: String, records: [ORMapRecord], tombstones: [String]) {
        self.key = key
        self.records = records
        self.tombstones = tombstones
    }
}
