import Tenancy
import TopGunCore
import TopGunWire

/// A tenant quota a request can run into (design.md §7), by its name in the metadata store,
/// in errors (`details.quota`) and in the control plane's API.
public enum Quota: String, Sendable, CaseIterable {
    case connections = "max_connections"
    case operationsPerSecond = "max_operations_per_second"
    case messageBytes = "max_message_bytes"
    case storageBytes = "max_storage_bytes"
    case maps = "max_maps"
    case liveSubscriptions = "max_live_subscriptions"
}

/// What a quota refused, and how the client is told.
public struct QuotaRefusal: Sendable, Equatable, Error {
    public var quota: Quota
    public var limit: Int64
    /// When to try again; nil for refusals for good (the op is rejected, not deferred).
    public var retryAfterMs: Int64?
    /// The text the client reads.
    public var message: String

    /// 413 for message bytes, 429 for everything else.
    public var code: WireErrorCode { quota == .messageBytes ? .tooLarge : .rateLimited }

    /// As `ERROR {code, message, details: {quota, limit, retryAfterMs}}`.
    public var errorMessage: ErrorMessage {
        var details: DataObject = ["quota": .string(quota.rawValue), "limit": .int(limit)]
        if let retryAfterMs { details["retryAfterMs"] = .int(retryAfterMs) }
        return .make(code, message, details: details)
    }

    /// As the rejection of one op, for good.
    public var opOutcome: OpOutcome { .rejected(code, message) }
}

/// Every quota decision of a node, and nothing else: counts and limits in, a decision out.
/// The counts themselves stay with what owns them (the session registry, the tenant's
/// operations bucket, the subscription counts, the storage measurement); this is where each
/// rule lives once, tested without sockets (`QuotaGateTests`).
///
/// A limit of `Int64.max` is no limit (`TenantPolicies.unlimited`).
public enum QuotaGate {
    /// A newly authenticated connection, with `open` others of its tenant on this node. A
    /// refusal closes the socket with 1013 (not AUTH_FAIL: the token is good, and a client
    /// that saw AUTH_FAIL would throw it away).
    public static func connection(open: Int64, limit: Int64) -> QuotaRefusal? {
        guard open >= limit else { return nil }
        return QuotaRefusal(quota: .connections, limit: limit, retryAfterMs: nil, message: "quota max_connections (\(limit)) reached")
    }

    /// `count` operations charged to the tenant's bucket, which holds one second's worth of
    /// `limit` and is created full (or anew, full, when the limit changed). Nothing is taken
    /// when the charge is refused. A batch of more than a second's worth costs a full bucket:
    /// big batches are slowed to one per second, never refused for ever.
    public static func operations(_ count: Int, limit: Int64, bucket: inout TokenBucket?, nowNanos: UInt64) -> QuotaRefusal? {
        guard limit < Int64.max else { return nil }
        // A limit of 0 allows nothing; a bucket of capacity 0 would let free (zero-cost) charges through.
        guard limit > 0 else { return operationsRefusal(limit: 0, retryAfterMs: 1000) }
        var current = bucket.flatMap { $0.ratePerSecond == Double(limit) ? $0 : nil }
            ?? TokenBucket(capacity: Double(limit), ratePerSecond: Double(limit), nowNanos: nowNanos)
        defer { bucket = current }
        let cost = min(Double(count), Double(limit))
        guard !current.take(cost, nowNanos: nowNanos) else { return nil }
        return operationsRefusal(limit: limit, retryAfterMs: max(1, current.millisUntilAvailable(cost)))
    }

    /// `count` operations charged to this node's part of a cluster-wide limit
    /// (`ClusterRateShare`): a bucket refilled at `rate.perSecond`, holding `rate.capacity`,
    /// retuned in proportion when the rate changes. A charge larger than the bucket waits for
    /// a full one and leaves it in debt, so big batches are slowed, never refused for ever, and
    /// the cluster's total stays the limit's.
    static func operations(
        _ count: Int, limit: Int64, rate: ClusterRateShare.Rate, bucket: inout TokenBucket?, nowNanos: UInt64
    ) -> QuotaRefusal? {
        guard limit < Int64.max else { return nil }
        guard limit > 0 else { return operationsRefusal(limit: 0, retryAfterMs: 1000) }
        var current: TokenBucket
        if let existing = bucket {
            current = existing.ratePerSecond == rate.perSecond && existing.capacity == rate.capacity
                ? existing : existing.retuned(capacity: rate.capacity, ratePerSecond: rate.perSecond, nowNanos: nowNanos)
        } else {
            current = TokenBucket(capacity: rate.capacity, ratePerSecond: rate.perSecond, nowNanos: nowNanos)
        }
        defer { bucket = current }
        let threshold = min(Double(count), rate.capacity)
        guard !current.take(Double(count), whenAtLeast: threshold, nowNanos: nowNanos) else { return nil }
        return operationsRefusal(limit: limit, retryAfterMs: min(max(1, current.millisUntilAvailable(threshold)), 1000))
    }

    private static func operationsRefusal(limit: Int64, retryAfterMs: Int64) -> QuotaRefusal {
        QuotaRefusal(
            quota: .operationsPerSecond, limit: limit, retryAfterMs: retryAfterMs,
            message: "the tenant's quota of \(limit) operations per second is spent; send the ops again later")
    }

    /// A message (a frame, an HTTP sync body) of `bytes`.
    public static func message(bytes: Int, limit: Int64) -> QuotaRefusal? {
        guard Int64(bytes) > limit else { return nil }
        return QuotaRefusal(
            quota: .messageBytes, limit: limit, retryAfterMs: nil,
            message: "message of \(bytes) bytes is larger than the tenant's max_message_bytes (\(limit))")
    }

    /// A write to a tenant storing `storedBytes` (at the last measurement). Deletes always
    /// pass, so a tenant at its limit can make room.
    public static func write(isDelete: Bool, storedBytes: Int64, limit: Int64) -> QuotaRefusal? {
        guard !isDelete, limit < Int64.max, storedBytes >= limit else { return nil }
        return QuotaRefusal(
            quota: .storageBytes, limit: limit, retryAfterMs: nil,
            message: "the tenant's storage quota (max_storage_bytes) is full; delete data or raise the quota")
    }

    /// A write that would create map `name`, the tenant holding `existing` maps.
    public static func newMap(_ name: String, existing: Int, limit: Int64) -> QuotaRefusal? {
        guard Int64(existing) >= limit else { return nil }
        return QuotaRefusal(
            quota: .maps, limit: limit, retryAfterMs: nil,
            message: "the tenant may hold at most \(limit) maps (max_maps); '\(name)' would be one more")
    }

    /// A new live subscription (a query or a topic), the tenant holding `open` of them.
    public static func liveSubscription(open: Int64, limit: Int64) -> QuotaRefusal? {
        guard open >= limit else { return nil }
        return QuotaRefusal(
            quota: .liveSubscriptions, limit: limit, retryAfterMs: 60_000, message: "the tenant's quota of \(limit) live subscriptions is reached")
    }
}
