import Foundation
import TopGunCore

/// One node's lease as it writes it: who it is, this run of it, and where it is reached.
public struct ClusterLease: Sendable, Equatable {
    /// What a node says of itself in its lease.
    public enum Status: String, Sendable {
        /// Serving, and given partitions.
        case active = "ACTIVE"
        /// Stopping gracefully: the coordinator moves its partitions away.
        case leaving = "LEAVING"
    }

    public var node: NodeID
    /// This run of the node (a fresh id per start): a restarted node takes its row over only
    /// once the lease of its previous run has expired.
    public var incarnation: String
    /// `host:port` of its cluster port.
    public var clusterEndpoint: String
    /// Where clients reach it (empty until its server is bound; the coordinator gives no
    /// partition to a node clients cannot reach).
    public var websocketURL: String
    public var httpURL: String
    public var protocolVersion: Int
    public var status: Status

    public init(
        node: NodeID, incarnation: String, clusterEndpoint: String, websocketURL: String = "", httpURL: String = "",
        protocolVersion: Int, status: Status = .active
    ) {
        self.node = node
        self.incarnation = incarnation
        self.clusterEndpoint = clusterEndpoint
        self.websocketURL = websocketURL
        self.httpURL = httpURL
        self.protocolVersion = protocolVersion
        self.status = status
    }

    /// Whether clients can reach the node yet.
    public var hasClientEndpoints: Bool { !websocketURL.isEmpty && !httpURL.isEmpty }
}

/// A lease row as read back, judged by the database's clock.
public struct MemberLease: Sendable, Equatable {
    public var lease: ClusterLease
    /// Whether the lease had not expired when it was read.
    public var isLive: Bool
    /// When the node's run started (database time).
    public var startedAt: Date

    public init(lease: ClusterLease, isLive: Bool, startedAt: Date) {
        self.lease = lease
        self.isLive = isLive
        self.startedAt = startedAt
    }
}

/// The cluster's name and the secret its nodes prove to each other.
public struct ClusterCredentials: Sendable, Equatable {
    public var clusterId: String
    public var secret: [UInt8]

    public init(clusterId: String, secret: [UInt8]) {
        self.clusterId = clusterId
        self.secret = secret
    }
}

/// Why a node cannot take part in the cluster.
public enum ClusterMembershipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another live node holds this node id.
    case nodeIdInUse(NodeID)
    /// The lease was not renewed in time: another node may have the partitions now.
    case leaseLost(NodeID)
    /// Someone else published a table meanwhile (the coordinator lost its lock).
    case tableChanged(expected: Int64?, found: Int64?)

    public var description: String {
        switch self {
        case .nodeIdInUse(let node):
            "node id '\(node)' is held by another live node: give each node its own --node-id"
        case .leaseLost(let node):
            "node '\(node)' lost its cluster lease (not renewed before it expired)"
        case .tableChanged(let expected, let found):
            "the partition table changed under the coordinator (expected version \(expected.map(String.init) ?? "none"), found \(found.map(String.init) ?? "none"))"
        }
    }
}

/// Where the cluster keeps its membership and partition table (design.md §6): PostgreSQL
/// in production, whose transactions, row locks and advisory locks do the coordination.
/// A seam, so the membership logic above it can run against a double.
public protocol ClusterStore: Sendable {
    /// The cluster's id and secret, created by the first node that asks.
    func credentials() async throws -> ClusterCredentials
    /// Writes `lease` with `duration` to live; throws `nodeIdInUse` while another run of the
    /// node id holds a live lease.
    func acquire(_ lease: ClusterLease, duration: Duration) async throws
    /// Renews `lease` (and updates its endpoints and status); false when it had expired or
    /// was taken over: the node then no longer holds anything.
    func renew(_ lease: ClusterLease, duration: Duration) async throws -> Bool
    /// Deletes the lease (a node that left).
    func release(_ lease: ClusterLease) async throws
    /// Every lease row, live or not.
    func leases() async throws -> [MemberLease]
    /// The published table, or nil before the first.
    func table() async throws -> PartitionTable?
    /// Runs `body` while holding the coordinator lock, or returns false at once when
    /// another node holds it. The lock is lost with its connection: `body`'s calls then fail.
    func coordinate(as node: NodeID, _ body: @Sendable (any CoordinatorSession) async throws -> Void) async throws -> Bool
    /// Signals (one element each) when a new table is published; ends when the task is
    /// cancelled. Missed signals are covered by polling `table()`.
    func tableChanges() -> AsyncStream<Void>
    /// Records that `node` (in its run `incarnation`, when the table names one) holds a
    /// complete copy of `partition` under the owner's `epoch`: only while the table names it
    /// a replica of the partition under that epoch and that run still holds its lease.
    func reportSynced(partition: Int, node: NodeID, incarnation: String?, epoch: Int64) async throws
    /// Every complete copy reported: partition → node → epoch.
    func syncedReplicas() async throws -> [Int: [NodeID: Int64]]
    /// Closes its connections.
    func shutdown() async
}

/// What the coordinator may do while it holds the lock.
public protocol CoordinatorSession: Sendable {
    /// Publishes `table` if the published version is still `expected` (nil: none yet), and
    /// notifies every node; throws `tableChanged` otherwise.
    func publish(_ table: PartitionTable, replacing expected: Int64?, backupCount: Int, coordinator: NodeID) async throws
    /// Whether the lock's connection still answers.
    func stillHolds() async -> Bool
}
