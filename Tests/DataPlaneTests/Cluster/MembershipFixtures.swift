@testable import DataPlane
import Foundation
import TopGunCore

/// Lease rows and tables for the pure cluster logic (membership, the planner).
enum MembershipFixtures {
    static let protocolVersion = 1

    static func websocketURL(_ node: String) -> String { "ws://\(node).test:8080/ws" }
    static func httpURL(_ node: String) -> String { "http://\(node).test:8080" }

    /// A lease row as `ClusterStore.leases()` reports it; reachable and of the current protocol
    /// unless told otherwise.
    static func lease(
        _ node: String, status: ClusterLease.Status = .active, live: Bool = true, reachable: Bool = true,
        protocolVersion: Int = protocolVersion, websocketURL: String? = nil, httpURL: String? = nil
    ) -> MemberLease {
        MemberLease(
            lease: ClusterLease(
                node: NodeID(node), incarnation: "\(node)-run", clusterEndpoint: "\(node).test:7000",
                websocketURL: websocketURL ?? (reachable ? Self.websocketURL(node) : ""),
                httpURL: httpURL ?? (reachable ? Self.httpURL(node) : ""),
                protocolVersion: protocolVersion, status: status),
            isLive: live, startedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    /// The table member a reachable lease of `node` makes.
    static func member(_ node: String) -> PartitionTable.Member {
        PartitionTable.Member(id: NodeID(node), websocketURL: websocketURL(node), httpURL: httpURL(node), incarnation: "\(node)-run")
    }

    static func members(_ nodes: [String]) -> [PartitionTable.Member] { nodes.map(member) }

    static func view(_ leases: [MemberLease]) -> MembershipView { MembershipView(leases: leases) }

    /// A table whose every partition has `owner(partition)` under epoch 1 and no backups.
    static func table(version: Int64 = 1, members: [String], owner: (Int) -> String) -> PartitionTable {
        PartitionTable(
            version: version, members: self.members(members),
            assignments: (0..<PartitionFunction.partitionCount).map { PartitionTable.Assignment(owner: NodeID(owner($0)), epoch: 1) })!
    }
}
