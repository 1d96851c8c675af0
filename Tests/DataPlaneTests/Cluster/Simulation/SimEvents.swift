@testable import DataPlane
import TopGunCore

/// A request from one node to another over the cluster port.
enum SimPeerRequest {
    /// A client's write, forwarded by the node it reached to the partition's owner.
    case forwardWrite(writeID: Int)
    /// An owner's changes or snapshot for a backup (the production message).
    case replicate(ReplicaBatch)
    /// Rows handed to a partition's owner to merge (a deposed owner's, or a backup's).
    case mergeRecords([StoredRecord])
    /// `PeerPinger`'s probe: answered at once.
    case ping
}

/// A request to the database; each is one transaction.
enum SimDatabaseRequest {
    case acquire(ClusterLease)
    case renew(ClusterLease)
    case tryLock(session: UInt64)
    /// The coordinator's reads of one tick (`stillHolds`, `leases`, `table`, `syncedReplicas`).
    case coordinatorRead(session: UInt64)
    case publish(session: UInt64, table: PartitionTable, expected: Int64?)
    case readTable
    case load([Int])
    case store([StoredRecord], OwnershipClaim)
    case reportSynced([SimSyncedReport])
    case syncedReplicas
}

/// One `ClusterStore.reportSynced` call: `node` (in its run `incarnation`, as the owner's
/// last table named it) holds a complete copy of `partition` under `epoch`.
struct SimSyncedReport {
    var partition: Int
    var node: NodeID
    var incarnation: String?
    var epoch: Int64
}

/// What a request (to a peer or the database) came back with.
enum SimResult {
    case failed
    case ok
    case bool(Bool)
    case table(PartitionTable?)
    case coordinatorView(leases: [MemberLease], table: PartitionTable?, synced: [Int: [NodeID: Int64]])
    case rows([Int: [StoredRecord]])
    case synced([Int: [NodeID: Int64]])
    case refused(PartitionSet)
    /// A forwarded write met its concern at its owner, which held the partition under this epoch.
    case writeAcknowledged(SimAckFacts)
}

/// The timers of one run of a node.
enum SimTimer {
    case acquireRetry
    case heartbeat
    case coordinate
    case follow
    /// `waitUntilServing`'s next look at the table (every 50 ms until serving).
    case servingCheck
    case writeBehind(deadline: Int64)
    case replicatorWake
    case replicatorPersistedTick
    /// `Replicator.checkMovingCopies`, every `movingCopyCheckInterval`.
    case movingCopyCheck
    case replicationWaitExpired(batch: UInt64, waiter: UInt64)
    case displacedRetry
    case followCommitAgain
}

/// Everything that happens in the simulation, ordered by (virtual time, sequence).
enum SimEvent {
    case peerRequest(from: Int, fromGeneration: Int, to: Int, toGeneration: Int, call: UInt64, SimPeerRequest)
    /// An answer; `from` is the answering node, or -1 for the database.
    case reply(from: Int, to: Int, generation: Int, call: UInt64, SimResult)
    case databaseArrival(from: Int, generation: Int, call: UInt64, SimDatabaseRequest)
    case callTimeout(node: Int, generation: Int, call: UInt64)
    case timer(node: Int, generation: Int, SimTimer)
    /// `NOTIFY topgun_cluster` reaching a node's listener.
    case tableNotification(node: Int, generation: Int)
    case clientWrite
    case fault
    case restart(node: Int)
    /// During settling: is everything done?
    case settleCheck
}

/// Who asked: a run of a node and its call, to answer to.
struct SimCaller {
    var node: Int
    var generation: Int
    var call: UInt64
}
