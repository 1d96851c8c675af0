/// A tenant's limits (design.md §7). The data plane enforces each one with a typed error
/// naming it (protocol.md §15); the control plane stores and serves them.
public struct QuotaLimits: Sendable, Equatable, Hashable, Codable {
    /// Concurrent WebSocket sessions across the cluster.
    public var maxConnections: Int64
    /// Write operations per second (token bucket holding one second's worth).
    public var maxOperationsPerSecond: Int64
    /// Bytes of stored records.
    public var maxStorageBytes: Int64
    /// Distinct maps holding data.
    public var maxMaps: Int64
    /// Largest frame or HTTP sync body.
    public var maxMessageBytes: Int64
    /// Live queries and topic subscriptions open at once, all sessions together.
    public var maxLiveSubscriptions: Int64

    public init(
        maxConnections: Int64, maxOperationsPerSecond: Int64, maxStorageBytes: Int64,
        maxMaps: Int64, maxMessageBytes: Int64, maxLiveSubscriptions: Int64
    ) {
        self.maxConnections = maxConnections
        self.maxOperationsPerSecond = maxOperationsPerSecond
        self.maxStorageBytes = maxStorageBytes
        self.maxMaps = maxMaps
        self.maxMessageBytes = maxMessageBytes
        self.maxLiveSubscriptions = maxLiveSubscriptions
    }
}

/// The plans a tenant can be on. A plan picks the tenant's default quotas (the figures are
/// the contract's `x-topgun-plans`).
public enum Plan: String, Sendable, CaseIterable, Codable {
    case free
    case pro
    case enterprise

    public var defaultQuotas: QuotaLimits {
        switch self {
        case .free:
            QuotaLimits(
                maxConnections: 100, maxOperationsPerSecond: 100, maxStorageBytes: 104_857_600,
                maxMaps: 20, maxMessageBytes: 65_536, maxLiveSubscriptions: 100)
        case .pro:
            QuotaLimits(
                maxConnections: 10_000, maxOperationsPerSecond: 5_000, maxStorageBytes: 10_737_418_240,
                maxMaps: 500, maxMessageBytes: 1_048_576, maxLiveSubscriptions: 10_000)
        case .enterprise:
            QuotaLimits(
                maxConnections: 100_000, maxOperationsPerSecond: 50_000, maxStorageBytes: 1_099_511_627_776,
                maxMaps: 10_000, maxMessageBytes: 2_097_152, maxLiveSubscriptions: 100_000)
        }
    }
}
