import Tenancy
import TopGunCore
import TopGunWire

/// The routing decision for every read and subscription (design.md §6), as `WritePath` makes
/// it for writes: a read of a whole map (a live query, a Merkle sync, an HTTP sync delta)
/// needs every partition; a read of one name (a counter, a lock) needs its partition. It is
/// served here when this node owns those partitions and holds them in memory.
///
/// Reads that need another node are refused (503, naming the node) until the cluster forwards
/// them (issue 15 of the roadmap): a partial answer would tell a client "in sync" while it
/// misses records.
public struct ReadRouting: Sendable {
    let table: CurrentPartitionTable
    let unloaded: UnloadedPartitions

    public init(table: CurrentPartitionTable, unloaded: UnloadedPartitions) {
        self.table = table
        self.unloaded = unloaded
    }

    /// Where a read is served.
    public enum Plan: Equatable, Sendable {
        /// Every partition it needs is owned here and in memory.
        case local
        /// Some partitions it needs are owned by these nodes.
        case remote([NodeID])
        /// It needs this partition, which is owned here but not in memory now.
        case notLoaded(Int)
    }

    /// The plan of a read over a whole map.
    public func mapRead() -> Plan {
        let router = table.router
        if router.ownsEverything && unloaded.isEmpty { return .local }
        let plan = router.mapReadPlan()
        // A partition of its own still loading (a failover under way) comes first: gathering
        // from the others would answer without its records.
        if let partition = plan.localPartitions.first(where: unloaded.contains) { return .notLoaded(partition) }
        if !plan.remoteNodes.isEmpty { return .remote(plan.remoteNodes) }
        return .local
    }

    /// The plan of a read over a map of `tenant` that can only match `keys` (a query whose
    /// filter pins its keys, `Query.exactKeys`): their partitions only. Nil keys: the whole map.
    public func mapRead(keys: [String]?, tenant: TenantID) -> Plan {
        guard let keys else { return mapRead() }
        let router = table.router
        if router.ownsEverything && unloaded.isEmpty { return .local }
        var remote = Set<NodeID>()
        var notLoaded: Int?
        for key in keys {
            let partition = PartitionFunction.partition(forKey: key, tenantID: tenant.rawValue)
            if case .remote(let owner) = router.route(partition: partition) {
                remote.insert(owner)
            } else if unloaded.contains(partition) {
                notLoaded = partition
            }
        }
        if let notLoaded { return .notLoaded(notLoaded) }
        return remote.isEmpty ? .local : .remote(remote.sorted())
    }

    /// For Merkle sync of a map: the other owners to gather its tree from (empty: this node
    /// holds it all), when the node can gather (`canGather`: a node of a cluster); else the
    /// refusal to send.
    public func mapSyncOwners(canGather: Bool) -> Result<[NodeID], RefusedRead> {
        let plan = mapRead()
        if case .remote(let owners) = plan, canGather { return .success(owners) }
        if let refusal = Self.refusal(plan) { return .failure(RefusedRead(message: refusal)) }
        return .success([])
    }

    /// A read this node cannot serve now, and the answer that says so.
    public struct RefusedRead: Error, Sendable {
        public var message: ErrorMessage
    }

    /// The plan of a read of one name (a counter, a lock) of `tenant`.
    public func nameRead(_ name: String, tenant: TenantID) -> Plan {
        let router = table.router
        if router.ownsEverything && unloaded.isEmpty { return .local }
        let partition = PartitionFunction.partition(forKey: name, tenantID: tenant.rawValue)
        if case .remote(let owner) = router.route(partition: partition) { return .remote([owner]) }
        return unloaded.contains(partition) ? .notLoaded(partition) : .local
    }

    /// The answer to a read that cannot be served here; nil when it can.
    public static func refusal(_ plan: Plan) -> ErrorMessage? {
        switch plan {
        case .local: return nil
        case .remote(let owners): return .partitionOwnerUnreachable(owners[0])
        case .notLoaded(let partition): return .partitionNotLoaded(partition)
        }
    }
}

extension ErrorMessage {
    /// The answer when the owner of some partitions a request needs cannot take it now.
    public static func partitionOwnerUnreachable(_ owner: NodeID) -> ErrorMessage {
        .make(.unavailable, "the partition's owner, node '\(owner)', cannot be reached from this node; send the request again later", details: [
            "node": .string(owner.rawValue), "retryAfterMs": .int(1_000),
        ])
    }

    /// The answer when writes forwarded to `owner` were not taken: the owner's own refusal
    /// when it answered with one (say, its storage did not persist them in time), else that it
    /// could not be reached.
    public static func forwardFailed(to owner: NodeID, _ error: any Error) -> ErrorMessage {
        guard case ClusterTransportError.remoteFailure(_, let message) = error else { return .partitionOwnerUnreachable(owner) }
        return .make(.unavailable, "the partition's owner, node '\(owner)', did not take the writes (\(message)); send them again later", details: [
            "node": .string(owner.rawValue), "retryAfterMs": .int(1_000),
        ])
    }

    /// The answer of an owner to a forwarded request for a partition it no longer owns (the
    /// table changed on the way): it is not forwarded again, the client sends it again.
    public static func partitionMoved(to owner: NodeID) -> ErrorMessage {
        .make(.unavailable, "the partition moved to node '\(owner)' while the request was on its way; send the request again", details: [
            "node": .string(owner.rawValue), "retryAfterMs": .int(200),
        ])
    }

    /// The answer when a partition a request needs is not in memory on this node now.
    public static func partitionNotLoaded(_ partition: Int) -> ErrorMessage {
        .make(.unavailable, "partition \(partition) is being loaded on this node; send the request again later", details: [
            "partition": .int(Int64(partition)), "retryAfterMs": .int(1_000),
        ])
    }
}
