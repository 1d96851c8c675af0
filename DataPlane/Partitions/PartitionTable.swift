import Synchronization
import TopGunCore

/// A data-plane node's identity in the cluster (`--node-id`), as `PARTITION_MAP` names it.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Who holds each of the 271 partitions (design.md §6): an owner, its backups and the epoch
/// of that ownership, under one version for the whole table. A value: the node acts on the
/// table it was handed, and a newer table replaces it whole.
public struct PartitionTable: Sendable, Equatable {
    /// One partition's holders.
    public struct Assignment: Sendable, Equatable {
        public var owner: NodeID
        public var backups: [NodeID]
        /// Bumped whenever the owner changes: a flush commits only under the epoch its node
        /// still owns (design.md §6).
        public var epoch: Int64
        /// Set while the partition moves: the node that becomes its owner once it holds a
        /// complete copy (it follows the owner's changes as a backup does meanwhile).
        public var migrationTarget: NodeID?

        public init(owner: NodeID, backups: [NodeID] = [], epoch: Int64, migrationTarget: NodeID? = nil) {
            self.owner = owner
            self.backups = backups
            self.epoch = epoch
            self.migrationTarget = migrationTarget
        }

        /// Who gets the owner's changes: its backups and a migration target.
        public var replicas: [NodeID] {
            guard let migrationTarget, migrationTarget != owner, !backups.contains(migrationTarget) else { return backups }
            return backups + [migrationTarget]
        }
    }

    /// A node of the table and where clients reach it (empty until it is known).
    public struct Member: Sendable, Equatable {
        public var id: NodeID
        public var websocketURL: String
        public var httpURL: String
        /// The run of the node the table was computed for (`ClusterLease.incarnation`); nil
        /// when unknown (a node on its own). A table naming a node's previous run is not the
        /// new run's: that run's partitions fail over first.
        public var incarnation: String?

        public init(id: NodeID, websocketURL: String = "", httpURL: String = "", incarnation: String? = nil) {
            self.id = id
            self.websocketURL = websocketURL
            self.httpURL = httpURL
            self.incarnation = incarnation
        }
    }

    public let version: Int64
    public let members: [Member]
    /// By server partition (0..<271).
    public let assignments: [Assignment]

    /// A table of `PartitionFunction.partitionCount` assignments; every owner and backup must
    /// be a member.
    public init?(version: Int64, members: [Member], assignments: [Assignment]) {
        guard assignments.count == PartitionFunction.partitionCount else { return nil }
        let ids = Set(members.map(\.id))
        guard ids.count == members.count,
            assignments.allSatisfy({
                ids.contains($0.owner) && $0.backups.allSatisfy(ids.contains) && !$0.backups.contains($0.owner)
                    && ($0.migrationTarget.map { ids.contains($0) } ?? true) && $0.migrationTarget != $0.owner
            })
        else { return nil }
        self.version = version
        self.members = members
        self.assignments = assignments
    }

    /// One node owning every partition, without backups: a node on its own.
    public static func singleNode(_ node: NodeID) -> PartitionTable {
        PartitionTable(
            version: 1, members: [Member(id: node)],
            assignments: Array(repeating: Assignment(owner: node, epoch: 1), count: PartitionFunction.partitionCount))!
    }

    /// What a node of a cluster routes by before it has read the published table: version 0,
    /// everything its own under epoch 0 (which no flush can claim), while every partition is
    /// unloaded, so that every request waits (503) for the real table.
    public static func unpublished(_ node: NodeID) -> PartitionTable {
        PartitionTable(
            version: 0, members: [Member(id: node)],
            assignments: Array(repeating: Assignment(owner: node, epoch: 0), count: PartitionFunction.partitionCount))!
    }

    public func assignment(of partition: Int) -> Assignment { assignments[partition] }

    /// The run of `node` this table was computed for (nil: not a member, or not recorded).
    public func incarnation(of node: NodeID) -> String? {
        members.first { $0.id == node }?.incarnation
    }

    /// Whether the table names `node` under a run other than `incarnation`: it was computed
    /// for a previous run of the node, and nothing in it is this run's.
    public func namesAnotherRun(of node: NodeID, than incarnation: String) -> Bool {
        guard let recorded = self.incarnation(of: node) else { return false }
        return recorded != incarnation
    }

    public func owner(of partition: Int) -> NodeID { assignments[partition].owner }

    /// Whether `node` owns every partition (then no op needs a routing lookup).
    public func ownsEverything(_ node: NodeID) -> Bool { assignments.allSatisfy { $0.owner == node } }

    /// The partitions `node` owns.
    public func partitions(ownedBy node: NodeID) -> [Int] {
        assignments.indices.filter { assignments[$0].owner == node }
    }
}

/// The table a node currently acts on, replaced whole when a newer one arrives.
public final class CurrentPartitionTable: Sendable {
    private let state: Mutex<(table: PartitionTable, ownsEverything: Bool)>
    public let localNode: NodeID

    public init(localNode: NodeID, table: PartitionTable? = nil) {
        let table = table ?? .singleNode(localNode)
        self.localNode = localNode
        self.state = Mutex((table, table.ownsEverything(localNode)))
    }

    public var table: PartitionTable { state.withLock { $0.table } }

    /// Installs `table` unless the current one is as new; returns whether it was installed.
    @discardableResult
    public func install(_ table: PartitionTable) -> Bool {
        state.withLock { state in
            guard table.version > state.table.version else { return false }
            state = (table, table.ownsEverything(localNode))
            return true
        }
    }

    /// The routing of this moment (`PartitionRouter`).
    public var router: PartitionRouter {
        state.withLock { PartitionRouter(table: $0.table, localNode: localNode, ownsEverything: $0.ownsEverything) }
    }
}
