import TopGunCore

/// Where a write, read or subscription of one partition is served (design.md §6): here, or
/// by the named node that owns the partition.
public enum Route: Hashable, Sendable {
    case local
    case remote(NodeID)
}

/// The one place that decides ownership for a request, from one table: every write, read and
/// subscription asks it, rather than reading the table itself.
public struct PartitionRouter: Sendable {
    public let table: PartitionTable
    public let localNode: NodeID
    /// Precomputed: a node that owns every partition (a node on its own) routes nothing.
    public let ownsEverything: Bool

    public init(table: PartitionTable, localNode: NodeID) {
        self.init(table: table, localNode: localNode, ownsEverything: table.ownsEverything(localNode))
    }

    init(table: PartitionTable, localNode: NodeID, ownsEverything: Bool) {
        self.table = table
        self.localNode = localNode
        self.ownsEverything = ownsEverything
    }

    public func route(partition: Int) -> Route {
        if ownsEverything { return .local }
        let owner = table.owner(of: partition)
        return owner == localNode ? .local : .remote(owner)
    }

    /// The route of `key` of a tenant (its tenant-aware partition).
    public func route(key: String, tenant: String) -> Route {
        if ownsEverything { return .local }
        return route(partition: PartitionFunction.partition(forKey: key, tenantID: tenant))
    }

    /// Splits positions of a batch by route, keeping their order: `key(i)` is the key of the
    /// `i`th position. All local, without hashing a key, when this node owns everything.
    public func split(_ positions: [Int], tenant: String, key: (Int) -> String) -> (local: [Int], remote: [NodeID: [Int]]) {
        if ownsEverything { return (positions, [:]) }
        let offset = PartitionFunction.tenantOffset(tenant)
        var local: [Int] = []
        var remote: [NodeID: [Int]] = [:]
        for position in positions {
            let partition = (PartitionFunction.clientPartition(forKey: key(position)) + offset) % PartitionFunction.partitionCount
            switch route(partition: partition) {
            case .local: local.append(position)
            case .remote(let node): remote[node, default: []].append(position)
            }
        }
        return (local, remote)
    }

    /// For a read over a whole map of a tenant: the partitions served here, and the nodes to
    /// ask for the others.
    public func mapReadPlan() -> (localPartitions: [Int], remoteNodes: [NodeID]) {
        if ownsEverything { return (Array(0..<PartitionFunction.partitionCount), []) }
        let remote = Set(table.assignments.map(\.owner)).subtracting([localNode])
        return (table.partitions(ownedBy: localNode), remote.sorted())
    }
}
