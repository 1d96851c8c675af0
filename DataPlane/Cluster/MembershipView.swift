import TopGunCore

/// What the lease rows say about the cluster at one moment (pure: the rows come from
/// `ClusterStore.leases()`, judged by the database's clock).
public struct MembershipView: Sendable, Equatable {
    /// A node's state as `GET /cluster` reports it.
    public enum Status: String, Sendable {
        /// Live and in the published table.
        case active = "ACTIVE"
        /// Live, not yet in the published table.
        case joining = "JOINING"
        /// Live and stopping: its partitions are moving away.
        case leaving = "LEAVING"
        /// In the published table, its lease expired (or gone).
        case dead = "DEAD"
    }

    /// A node and its state, with the endpoints of its lease (or of the table).
    public struct Entry: Sendable, Equatable {
        public var node: NodeID
        public var status: Status
        public var websocketURL: String
        public var httpURL: String
    }

    public let leases: [MemberLease]

    public init(leases: [MemberLease]) {
        self.leases = leases.sorted { $0.lease.node < $1.lease.node }
    }

    /// The nodes the coordinator gives partitions to: live, not leaving, reachable by
    /// clients, and speaking `protocolVersion`.
    public func assignable(protocolVersion: Int) -> [PartitionTable.Member] {
        leases.filter { $0.isLive && $0.lease.status == .active && $0.lease.hasClientEndpoints && $0.lease.protocolVersion == protocolVersion }
            .map {
                PartitionTable.Member(
                    id: $0.lease.node, websocketURL: $0.lease.websocketURL, httpURL: $0.lease.httpURL, incarnation: $0.lease.incarnation)
            }
    }

    /// Nodes of `table` that restarted since it was computed: a live lease holds another run
    /// (incarnation) than the one the table records.
    public func restarted(since table: PartitionTable) -> Set<NodeID> {
        var restarted = Set<NodeID>()
        for member in table.members {
            guard let recorded = member.incarnation,
                let row = leases.first(where: { $0.lease.node == member.id }), row.isLive, row.lease.incarnation != recorded
            else { continue }
            restarted.insert(member.id)
        }
        return restarted
    }

    /// Every node of `table` and every live lease, with its state, by node id.
    public func entries(table: PartitionTable?) -> [Entry] {
        var byNode: [NodeID: Entry] = [:]
        let inTable = Set(table?.members.map(\.id) ?? [])
        for member in table?.members ?? [] {
            byNode[member.id] = Entry(node: member.id, status: .dead, websocketURL: member.websocketURL, httpURL: member.httpURL)
        }
        for row in leases {
            let status: Status
            if !row.isLive {
                guard inTable.contains(row.lease.node) else { continue }
                status = .dead
            } else if row.lease.status == .leaving {
                status = .leaving
            } else {
                status = inTable.contains(row.lease.node) ? .active : .joining
            }
            byNode[row.lease.node] = Entry(node: row.lease.node, status: status, websocketURL: row.lease.websocketURL, httpURL: row.lease.httpURL)
        }
        return byNode.values.sorted { $0.node < $1.node }
    }
}
