import TopGunCore

/// What a flush asserts when several nodes share one records database (design.md §6): that
/// the flushing node, in this run (`incarnation`), still holds its lease and owns each
/// partition under the epoch it writes with. The storage checks it in the transaction that
/// writes the rows.
public struct OwnershipClaim: Sendable, Equatable {
    public var node: NodeID
    /// The run of the node whose lease is checked (`ClusterLease.incarnation`).
    public var incarnation: String
    /// Per partition, the epoch the node owns it under; a partition absent here is not owned.
    public var epochs: [Int: Int64]

    public init(node: NodeID, incarnation: String, epochs: [Int: Int64]) {
        self.node = node
        self.incarnation = incarnation
        self.epochs = epochs
    }
}

/// Where a write-behind queue learns, at each flush, what its node may claim.
public protocol OwnershipClaims: Sendable {
    /// The claim for a flush of rows of `partitions`, or nil when this node is not clustered
    /// (it owns every partition and no one else writes its database).
    func claim(for partitions: PartitionSet) -> OwnershipClaim?
}

extension ServerStorage {
    /// A storage no other node writes (SQLite, memory) has no other owner to defer to: it
    /// stores everything and refuses no partition.
    public func store(_ records: [StoredRecord], claiming claim: OwnershipClaim) async throws -> PartitionSet {
        try await store(records)
        return PartitionSet()
    }
}
