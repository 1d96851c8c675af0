import TopGunCore

/// `GET /cluster`: the cluster as one node sees it (its table and the leases it last read).
public struct ClusterStatus: Sendable, Equatable {
    public var clusterId: String
    public var table: PartitionTable
    public var members: [MembershipView.Entry]

    /// `{"clusterId", "tableVersion", "members": [{"nodeId", "status", "websocket", "http"}],
    /// "partitions": [{"partitionId", "owner", "backups", "epoch", "state" (ACTIVE or
    /// MIGRATING, then with "migrationTarget")}]}`, partitions in the server's (tenant-aware)
    /// numbering.
    public var json: String {
        let members: [JSONValue] = members.map { entry in
            .object([
                "nodeId": .string(entry.node.rawValue), "status": .string(entry.status.rawValue),
                "websocket": .string(entry.websocketURL), "http": .string(entry.httpURL),
            ])
        }
        let partitions: [JSONValue] = table.assignments.enumerated().map { partition, assignment in
            var object: JSONObject = [
                "partitionId": .integer(Int64(partition)), "owner": .string(assignment.owner.rawValue),
                "backups": .array(assignment.backups.map { .string($0.rawValue) }), "epoch": .integer(assignment.epoch),
                "state": .string(assignment.migrationTarget == nil ? "ACTIVE" : "MIGRATING"),
            ]
            if let target = assignment.migrationTarget { object["migrationTarget"] = .string(target.rawValue) }
            return .object(object)
        }
        let document: JSONValue = .object([
            "clusterId": .string(clusterId), "tableVersion": .integer(table.version), "members": .array(members),
            "partitions": .array(partitions),
        ])
        return document.canonicalText
    }
}

extension ClusterMembershipService {
    /// What `GET /cluster` reports now: the leases as the database has them (those of the
    /// last heartbeat when it does not answer), beside this node's table.
    public func status() async -> ClusterStatus {
        let table = self.table.table
        let view = (try? await store.leases()).map(MembershipView.init(leases:)) ?? membership
        return ClusterStatus(clusterId: credentials.clusterId, table: table, members: view.entries(table: table.version == 0 ? nil : table))
    }
}
