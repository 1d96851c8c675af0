import Logging
import Metadata
import Synchronization
import Tenancy
import TopGunCore

/// What the node enforces per tenant (design.md §7): its quotas, its maps' schemas and its
/// operations-per-second bucket. Read from the metadata store on first use and dropped when
/// the change stream says they changed, so a quota or schema change applies to open
/// sessions without a reconnect.
///
/// Reads on the write path are a dictionary lookup under a short lock; only a miss goes to
/// the store. If the store cannot answer, the last known value is kept (or, for a tenant
/// never read, no limit: an unreachable metadata store must not stop a tenant's writes).
public final class TenantPolicies: Sendable {
    /// A map's schema in force.
    public struct SchemaPolicy: Sendable {
        public var version: Int
        public var enforcement: SchemaEnforcement
        public var schema: MapSchema
    }

    private struct Entry {
        var quotas: QuotaLimits?
        /// `.some(nil)` caches "no schema" for a map.
        /// By map name, compared byte for byte (as maps are: `MapDirectory.MapID`).
        var schemas: [HashedKey: SchemaPolicy?] = [:]
        var bucket: TokenBucket?
        /// In a cluster: this node's part of the tenant's operations per second.
        var share: ClusterRateShare.Rate?
        /// Operations admitted and asked for since the last `takeOperationCounts`.
        var admitted: Int64 = 0
        var demanded: Int64 = 0
    }

    /// In a cluster: the node's cluster-wide slots, and how many nodes are live.
    struct ClusterQuotas: Sendable {
        var slots: ClusterSlots
        var members: @Sendable () -> Int
    }

    private let cluster = SynchronizedBox<ClusterQuotas?>(nil)
    /// The tenant of each session holding a cluster connection slot.
    private let connectionSlots = Mutex<[SessionID: TenantID]>([:])
    /// The subscriptions (by key) of each session holding a cluster subscription slot.
    private let subscriptionSlots = Mutex<[SessionID: (tenant: TenantID, keys: Set<String>)]>([:])

    private let metadata: (any MetadataStore)?
    /// The store policies are read from (nil on a node without one).
    public var metadataStore: (any MetadataStore)? { metadata }
    private let logger: Logger
    private let entries = Mutex<[TenantID: Entry]>([:])

    /// Live subscriptions (queries and topics) per tenant and per session, for
    /// `max_live_subscriptions` across all of a tenant's sessions on this node.
    private struct Subscriptions {
        var perTenant: [TenantID: Int64] = [:]
        /// Each session's subscriptions by key (`query:<id>`, `topic:<name>`), so repeating a
        /// subscription counts once and ending one that does not exist releases nothing.
        var perSession: [SessionID: (tenant: TenantID, keys: Set<String>)] = [:]
    }

    private let subscriptions = Mutex(Subscriptions())

    /// Per session, the first op of the first batch a quota refused. An `OP_ACK` acknowledges
    /// every op up to its `lastId`, so acknowledging a later batch would silently drop the
    /// refused ops from the client's queue: until the client sends that op again, the
    /// session's later batches are refused too.
    /// Per session, the first op of a batch refused whole (and whether a quota refused it),
    /// until the client sends it again.
    private let refusedOps = Mutex<[SessionID: (opID: String, byQuota: Bool)]>([:])

    /// Each tenant's stored bytes at the last measurement (`StorageMeterService`).
    private let storedBytes = Mutex<[TenantID: Int64]>([:])

    /// Records a measurement of every tenant's stored bytes (tenants absent store nothing).
    public func storedBytesMeasured(_ bytes: [TenantID: Int64]) {
        storedBytes.withLock { $0 = bytes }
    }

    /// The tenant's stored bytes at the last measurement (0 before the first).
    public func storedBytes(_ tenant: TenantID) -> Int64 {
        storedBytes.withLock { $0[tenant] ?? 0 }
    }

    /// No limit of any kind: for nodes without a metadata store (tests, benchmarks).
    public static let unlimited = QuotaLimits(
        maxConnections: .max, maxOperationsPerSecond: .max, maxStorageBytes: .max, maxMaps: .max,
        maxMessageBytes: .max, maxLiveSubscriptions: .max)

    public init(metadata: (any MetadataStore)?, logger: Logger) {
        self.metadata = metadata
        self.logger = logger
    }

    // MARK: Quotas

    public func quotas(_ tenant: TenantID) async -> QuotaLimits {
        if let cached = entries.withLock({ $0[tenant]?.quotas }) { return cached }
        guard let metadata else { return Self.unlimited }
        do {
            let limits = try await metadata.quotas(tenant: tenant)?.limits ?? Self.unlimited
            entries.withLock { $0[tenant, default: Entry()].quotas = limits }
            return limits
        } catch {
            logger.warning("cannot read a tenant's quotas; not limiting it for now", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            return Self.unlimited
        }
    }

    /// The quotas last read for `tenant`, without waiting for the store (nil if never read).
    public func cachedQuotas(_ tenant: TenantID) -> QuotaLimits? {
        entries.withLock { $0[tenant]?.quotas }
    }

    /// Charges `count` operations to the tenant's bucket (`QuotaGate.operations` decides,
    /// against `limit`, its `max_operations_per_second`); nil when admitted.
    /// In a cluster the bucket holds this node's part of the limit (`ClusterQuotaService`).
    public func chargeOperations(_ tenant: TenantID, count: Int, limit: Int64, nowNanos: UInt64) -> QuotaRefusal? {
        guard limit < Self.unlimited.maxOperationsPerSecond else { return nil }
        let cluster = cluster.get()
        return entries.withLock { entries in
            var entry = entries[tenant] ?? Entry()
            defer { entries[tenant] = entry }
            guard let cluster else {
                return QuotaGate.operations(count, limit: limit, bucket: &entry.bucket, nowNanos: nowNanos)
            }
            // Live members are counted only until the quota service gives the tenant its part.
            let rate = entry.share ?? ClusterRateShare.fallback(limit: limit, members: cluster.members())
            let refusal = QuotaGate.operations(count, limit: limit, rate: rate, bucket: &entry.bucket, nowNanos: nowNanos)
            entry.demanded += Int64(count)
            if refusal == nil { entry.admitted += Int64(count) }
            return refusal
        }
    }

    // MARK: Cluster

    /// Makes the tenants' quotas cluster-wide (a node of a cluster, once it runs).
    func useCluster(_ quotas: ClusterQuotas) {
        cluster.set(quotas)
    }

    /// Each tenant's operations admitted and asked for on this node since the last call.
    func takeOperationCounts() -> [TenantID: (admitted: Int64, demanded: Int64)] {
        entries.withLock { entries in
            var counts: [TenantID: (admitted: Int64, demanded: Int64)] = [:]
            for (tenant, entry) in entries where entry.demanded > 0 {
                counts[tenant] = (entry.admitted, entry.demanded)
                entries[tenant]!.admitted = 0
                entries[tenant]!.demanded = 0
            }
            return counts
        }
    }

    /// This node's parts of the tenants' operations per second, for the next second.
    func setOperationRates(_ rates: [TenantID: ClusterRateShare.Rate]) {
        entries.withLock { entries in
            for (tenant, rate) in rates { entries[tenant, default: Entry()].share = rate }
        }
    }

    /// A slot of the tenant's cluster-wide connections for `session`, when the tenant has a
    /// connection limit and the node is in a cluster; the refusal when the cluster's limit is
    /// taken. Released by `sessionEnded`.
    func acquireConnectionSlot(_ tenant: TenantID, session: SessionID) async -> QuotaRefusal? {
        guard let cluster = cluster.get() else { return nil }
        let limit = await quotas(tenant).maxConnections
        guard limit < Self.unlimited.maxConnections else { return nil }
        guard await cluster.slots.acquire(.connections, tenant: tenant, limit: limit) else {
            return QuotaRefusal(
                quota: .connections, limit: limit, retryAfterMs: nil, message: "quota max_connections (\(limit)) reached in the cluster")
        }
        connectionSlots.withLock { $0[session] = tenant }
        return nil
    }

    /// The session closed (or was refused after taking a slot): its connection slot is free.
    func releaseConnectionSlot(session: SessionID) {
        guard let tenant = connectionSlots.withLock({ $0.removeValue(forKey: session) }) else { return }
        cluster.get()?.slots.release(.connections, tenant: tenant)
    }

    /// Whether a batch may be considered on this session: not while an earlier refused op
    /// is outstanding, unless the batch sends it again. Refused: whether a quota refused the
    /// earlier batch.
    public func mayConsider(_ opIDs: [String], session: SessionID) -> (allowed: Bool, byQuota: Bool) {
        refusedOps.withLock { refused in
            guard let first = refused[session] else { return (true, false) }
            guard opIDs.contains(first.opID) else { return (false, first.byQuota) }
            refused[session] = nil
            return (true, false)
        }
    }

    /// Whether the session has a refused batch the client has not sent again yet.
    public func awaitsResend(session: SessionID) -> Bool {
        refusedOps.withLock { $0[session] != nil }
    }

    /// Remembers that a batch starting with `opID` was refused on this session (by a quota,
    /// or because it could not be applied or confirmed now).
    public func refused(_ opID: String, session: SessionID, byQuota: Bool = false) {
        refusedOps.withLock { refused in
            if refused[session] == nil { refused[session] = (opID, byQuota) }
        }
    }

    // MARK: Live subscriptions

    /// Counts the live subscription `key` of the session (once, however often it is
    /// repeated), unless `QuotaGate.liveSubscription` refuses: the refusal then.
    /// In a cluster, a slot of the tenant's cluster-wide subscriptions is taken too (`ClusterSlots`).
    public func acquireSubscription(_ tenant: TenantID, session: SessionID, key: String) async -> QuotaRefusal? {
        let limit = await quotas(tenant).maxLiveSubscriptions
        enum Verdict { case counted, repeated, refused(QuotaRefusal) }
        let verdict = subscriptions.withLock { state -> Verdict in
            if state.perSession[session]?.keys.contains(key) == true { return .repeated }
            let open = state.perTenant[tenant] ?? 0
            if let refusal = QuotaGate.liveSubscription(open: open, limit: limit) { return .refused(refusal) }
            state.perTenant[tenant] = open + 1
            var entry = state.perSession[session] ?? (tenant, [])
            entry.keys.insert(key)
            state.perSession[session] = entry
            return .counted
        }
        switch verdict {
        case .repeated: return nil
        case .refused(let refusal): return refusal
        case .counted: break
        }
        guard let cluster = cluster.get(), limit < Self.unlimited.maxLiveSubscriptions else { return nil }
        if await cluster.slots.acquire(.subscriptions, tenant: tenant, limit: limit) {
            _ = subscriptionSlots.withLock { $0[session, default: (tenant, [])].keys.insert(key) }
            return nil
        }
        // Not counted after all (and no cluster slot to give back).
        forget(session: session, key: key)
        return QuotaRefusal(
            quota: .liveSubscriptions, limit: limit, retryAfterMs: 60_000,
            message: "the tenant's quota of \(limit) live subscriptions is reached in the cluster")
    }

    private func forget(session: SessionID, key: String) {
        subscriptions.withLock { state in
            guard var entry = state.perSession[session], entry.keys.remove(key) != nil else { return }
            state.perSession[session] = entry.keys.isEmpty ? nil : entry
            let left = (state.perTenant[entry.tenant] ?? 1) - 1
            state.perTenant[entry.tenant] = left > 0 ? left : nil
        }
    }

    /// The session's subscription `key` ended (nothing happens if it had none).
    public func releaseSubscription(session: SessionID, key: String) {
        let tenant = subscriptions.withLock { state -> TenantID? in
            guard var entry = state.perSession[session], entry.keys.remove(key) != nil else { return nil }
            state.perSession[session] = entry.keys.isEmpty ? nil : entry
            let left = (state.perTenant[entry.tenant] ?? 1) - 1
            state.perTenant[entry.tenant] = left > 0 ? left : nil
            return entry.tenant
        }
        guard tenant != nil else { return }
        let slotted = subscriptionSlots.withLock { slots -> TenantID? in
            guard let tenant = slots[session]?.tenant, slots[session]!.keys.remove(key) != nil else { return nil }
            if slots[session]!.keys.isEmpty { slots[session] = nil }
            return tenant
        }
        if let slotted { cluster.get()?.slots.release(.subscriptions, tenant: slotted) }
    }

    /// The session closed: all its subscriptions ended, and its cluster connection slot is free.
    public func releaseSubscriptions(session: SessionID) {
        _ = refusedOps.withLock { $0.removeValue(forKey: session) }
        subscriptions.withLock { state in
            guard let entry = state.perSession.removeValue(forKey: session) else { return }
            let left = (state.perTenant[entry.tenant] ?? 0) - Int64(entry.keys.count)
            state.perTenant[entry.tenant] = left > 0 ? left : nil
        }
        if let slotted = subscriptionSlots.withLock({ $0.removeValue(forKey: session) }) {
            cluster.get()?.slots.release(.subscriptions, tenant: slotted.tenant, count: Int64(slotted.keys.count))
        }
        releaseConnectionSlot(session: session)
    }

    // MARK: Schemas

    /// The schema in force for `map`, nil when the map has none (or its mode is `off`).
    public func schema(_ tenant: TenantID, map: String) async -> SchemaPolicy? {
        if let cached = entries.withLock({ $0[tenant]?.schemas[HashedKey(map)] }) { return cached }
        guard let metadata else { return nil }
        let policy: SchemaPolicy?
        do {
            if let version = try await metadata.currentSchema(tenant: tenant, map: map), version.enforcement != .off {
                policy = SchemaPolicy(version: version.version, enforcement: version.enforcement, schema: try MapSchema.parse(json: version.schemaJSON))
            } else {
                policy = nil
            }
        } catch {
            logger.warning("cannot read a map's schema; not checking it for now", metadata: ["tenant": "\(tenant)", "map": "\(map)", "error": "\(error)"])
            return nil
        }
        entries.withLock { $0[tenant, default: Entry()].schemas[HashedKey(map)] = .some(policy) }
        return policy
    }

    // MARK: Changes

    public func metadataChanged(_ change: MetadataChange) {
        entries.withLock { entries in
            switch change {
            case .quota(let tenant), .tenant(let tenant):
                // A plan change moves plan-following quotas; both re-read.
                entries[tenant]?.quotas = nil
            case .schema(let tenant, let map):
                entries[tenant]?.schemas[HashedKey(map)] = nil
            case .resynchronize:
                entries.removeAll()
            case .signingKey:
                break
            }
        }
    }
}
