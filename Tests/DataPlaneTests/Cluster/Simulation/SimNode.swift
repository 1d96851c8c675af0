@testable import DataPlane
import TopGunCore

/// One run of a data-plane node of the cluster (a crash ends it; a restart is a new one),
/// modelled on the actors of `DataPlane/Cluster`: `ClusterMembershipService` (lease,
/// coordinator, following the table), `PartitionOwnership`, the write path, `WriteBehindQueue`,
/// `Replicator`, `ReplicaHolder` and `DisplacedRows`. Their decisions are made by the
/// production state machines and values (`MigrationPlanner`, `MembershipView`,
/// `OwnershipChange`, `PartitionOwnership.newerThanStored`, `CurrentPartitionTable`,
/// `TableOwnershipClaims`, `WriteBehindStateMachine`, `ReplicationLog`, `BackupReplicas`,
/// `LeaseWatch` on the virtual clock, `StoredValue.merging`);
/// this class only performs them as the actors do, with every `await` on the network or the
/// database turned into a request and a later event.
///
/// The extensions each model one actor: `+Membership`, `+Ownership`, `+WritePath`,
/// `+WriteBehind`, `+Replication`.
final class SimNode {
    unowned let world: SimWorld
    let index: Int
    let id: NodeID
    let generation: Int
    var settings: SimSettings { world.settings }
    var now: Int64 { world.now }

    // MARK: Membership (`ClusterMembershipService`)

    /// The lease as the node writes it; its incarnation changes when a lost lease is taken again.
    var lease: ClusterLease
    /// This run's incarnation as flushes claim it and tables are judged by
    /// (`ClusterJoin.incarnation`): a lost lease sets the new one before giving up anything.
    let claimedIncarnation: SynchronizedBox<String>
    var joined = false
    /// Set while a lost lease is given up and taken again: the heartbeat loop waits for it.
    var reacquireDeadline: Int64?
    var incarnationCounter = 0
    /// The coordinator lock's session, while this node believes it holds it.
    var coordinatorSession: UInt64?
    /// The inputs of the planner's last nil answer: the same inputs give the same answer
    /// (`MigrationPlanner` is pure), so the simulation skips recomputing it.
    var plannerMemo: PlannerInputs?
    var refreshInFlight = false
    var refreshPending = false
    /// `waitUntilServing` runs (it reads the table every 50 ms until the node serves).
    var awaitingServing = false
    var servingCheckScheduled = false
    /// The production `LeaseWatch`, on the virtual clock: told of each renewal the database
    /// answered; REPLICATED is acknowledged only if the lease held (one term) throughout the
    /// wait.
    let leaseWatch: LeaseWatch
    /// The production `QuorumWatch`, on the virtual clock, fed by pings every heartbeat.
    let quorum: QuorumWatch

    struct PlannerInputs: Equatable {
        var version: Int64?
        var leases: [String]
        var syncedTargets: [Int]
    }

    // MARK: Ownership (`PartitionOwnership`, `CurrentPartitionTable`, `LocalPartitions`)

    /// The installed table (what requests are routed by), as production keeps it.
    let installed: CurrentPartitionTable
    /// `installed.table`, kept here too: read on every step, and a lock each time is slow.
    private(set) var table: PartitionTable
    /// What each flush claims (production's `TableOwnershipClaims`).
    let claims: TableOwnershipClaims
    var appliedVersion: Int64?
    var held: [Int: Int64] = [:]
    /// Partitions refused until loaded (`UnloadedPartitions`): all of them before a table.
    var unloaded = Set(0..<PartitionFunction.partitionCount)
    /// The records in memory, per partition.
    var memory: [Int: [RecordIdentity: StoredRecord]] = [:]
    var ownershipQueue: [OwnershipOperation] = []
    var ownershipRun: OwnershipRun?
    /// Copies taken for a promotion whose load failed, kept for the next attempt.
    var takenCopies: [Int: [StoredRecord]] = [:]

    // MARK: Write-behind (`WriteBehindQueue`)

    var writeBehind: WriteBehindStateMachine<SimInstant>
    var writeBehindTimer: Int64?
    /// Flushes in flight: flush id → its database call.
    var flushCalls: [UInt64: UInt64] = [:]
    var waiterPurposes: [UInt64: WaitPurpose] = [:]
    var nextWaiter: UInt64 = 0
    /// `reconcile` runs its loop once at a time; resolutions wait until it is done (the actor
    /// resumes continuations, whose tasks run later).
    var reconciling = false
    var reconcileAgain = false
    var deferredResolutions: [(WaitPurpose, Bool)] = []

    // MARK: Replication (`Replicator`, `ReplicaHolder`, `DisplacedRows`)

    var log = ReplicationLog()
    var snapshots: [Int: [NodeID: SnapshotState]] = [:]
    var persistedThrough: UInt64 = 0
    var awaitingCommit: [(batch: UInt64, ticket: FlushTicket)] = []
    var followingCommit: (batch: UInt64, ticket: FlushTicket)?
    /// Re-waits of the commit follower at one virtual instant (a busy loop if they pile up).
    var followerRetries: (at: Int64, count: Int) = (0, 0)
    var replicationWaiters: [UInt64: [UInt64: WaitPurpose]] = [:]
    var wakeScheduled = false
    var replicas = BackupReplicas()
    var followed: [Int: ReplicaHolder.Source] = [:]
    /// The run of each replica as the last table named it (`Replicator.replicaRuns`).
    var replicaRuns: [NodeID: String] = [:]
    var displacedPending: [StoredRecord] = []
    var displacedDelivery: DisplacedDelivery?
    var displacedFailures = 0
    var displacedRetryScheduled = false

    /// Requests awaiting an answer, by call id.
    var pendingCalls: [UInt64: Continuation] = [:]

    enum SnapshotState: Equatable {
        case sending(batch: UInt64, epoch: Int64)
        /// Recorded in the database at `recordedAt` (virtual ms; nil: the report failed).
        case synced(epoch: Int64, recordedAt: Int64?)

        func isSynced(under epoch: Int64) -> Bool {
            if case .synced(epoch, _) = self { return true }
            return false
        }
    }

    struct DisplacedDelivery {
        var rows: [StoredRecord]
        var remaining: [(owner: NodeID, rows: [StoredRecord])]
    }

    /// Who waits for a ticket or a replication batch, and what happens when it resolves.
    enum WaitPurpose {
        /// `incarnation`: the lease the write was applied under.
        case client(write: Int, facts: SimAckFacts, incarnation: String)
        case forwarded(write: Int, facts: SimAckFacts, incarnation: String, replyTo: SimCaller)
        case merge(replyTo: SimCaller)
        /// Displaced rows of a partition this node owns again, merged here.
        case localMerge
        case commitFollower(batch: UInt64)
        /// A REPLICATED wait: it counts only if the lease held throughout, in the term the
        /// write was taken in (`ClusterDurability`, `FlushTicket.leaseTerm`).
        /// `ticket` and `deadline`: what it waits for instead when the batch turns out
        /// unreplicated (every backup left before applying it), and until when.
        indirect case replicated(WaitPurpose, leaseTerm: UInt64?, ticket: FlushTicket, deadline: Int64)

        /// Whether a write's acknowledgement waits for the replicas rather than the commit.
        mutating func markViaReplicas(_ viaReplicas: Bool = true) {
            switch self {
            case .client(let write, var facts, let incarnation):
                facts.viaReplicas = viaReplicas
                self = .client(write: write, facts: facts, incarnation: incarnation)
            case .forwarded(let write, var facts, let incarnation, let replyTo):
                facts.viaReplicas = viaReplicas
                self = .forwarded(write: write, facts: facts, incarnation: incarnation, replyTo: replyTo)
            default:
                break
            }
        }
    }

    /// What a request's answer resumes.
    enum Continuation {
        case acquire
        case renew(heartbeat: Bool)
        case tryLock(session: UInt64)
        case coordinatorRead(session: UInt64)
        case publish(session: UInt64)
        case readTable
        case load
        case flush(id: UInt64)
        case reportSynced(backup: NodeID, sent: [Int: SnapshotState])
        case movingCopiesRead(counted: [(partition: Int, target: NodeID, state: SnapshotState)])
        case forward(write: Int, owner: NodeID)
        case replicate(backup: NodeID, through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>)
        case mergeRecords
        case ping(NodeID)
    }

    init(world: SimWorld, index: Int, generation: Int) {
        self.world = world
        self.index = index
        self.id = SimWorld.nodeID(index)
        self.generation = generation
        let incarnation = "\(SimWorld.nodeID(index))-g\(generation)-0"
        lease = ClusterLease(
            node: SimWorld.nodeID(index), incarnation: incarnation, clusterEndpoint: "\(SimWorld.nodeID(index)):9080",
            protocolVersion: ClusterSettings.protocolVersion)
        claimedIncarnation = SynchronizedBox(incarnation)
        installed = CurrentPartitionTable(localNode: SimWorld.nodeID(index), table: .unpublished(SimWorld.nodeID(index)))
        table = installed.table
        claims = TableOwnershipClaims(table: installed, incarnation: claimedIncarnation)
        let clock = world.clock
        leaseWatch = LeaseWatch(
            leaseDuration: .milliseconds(world.settings.leaseMs), heartbeatInterval: .milliseconds(world.settings.heartbeatMs),
            elapsed: { .milliseconds(clock.now) })
        quorum = QuorumWatch(localNode: SimWorld.nodeID(index), window: .milliseconds(world.settings.leaseMs), elapsed: { .milliseconds(clock.now) })
        writeBehind = WriteBehindStateMachine(configuration: WriteBehindConfiguration(
            storeTimeout: .milliseconds(world.settings.storeTimeoutMs)))
    }

    // MARK: Events

    func handle(_ timer: SimTimer) {
        switch timer {
        case .acquireRetry: acquire()
        case .heartbeat: heartbeat()
        case .coordinate: coordinate()
        case .follow:
            requestRefresh()
            pingPeers()
            self.timer(after: settings.heartbeatMs, .follow)
        case .servingCheck:
            servingCheckScheduled = false
            if awaitingServing { requestRefresh() }
        case .writeBehind(let deadline): writeBehindTimerFired(deadline)
        case .replicatorWake:
            wakeScheduled = false
            startSends()
        case .replicatorPersistedTick:
            startSends()
            self.timer(after: 500, .replicatorPersistedTick)
        case .movingCopyCheck:
            if world.settings.checkMovingCopies { checkMovingCopies() }
            self.timer(after: SimNode.movingCopyCheckMs, .movingCopyCheck)
        case .replicationWaitExpired(let batch, let waiter): replicationWaitExpired(batch, waiter)
        case .displacedRetry:
            displacedRetryScheduled = false
            attemptDisplacedDelivery()
        case .followCommitAgain: followCommitAgain()
        }
    }

    func handle(call: UInt64, _ result: SimResult) {
        guard let continuation = pendingCalls.removeValue(forKey: call) else { return }
        switch continuation {
        case .acquire: acquired(result)
        case .renew(let heartbeat): renewed(result, heartbeat: heartbeat)
        case .tryLock, .coordinatorRead, .publish: coordinatorAnswered(continuation, result)
        case .readTable: tableRead(result)
        case .load: loaded(result)
        case .flush(let id): flushFinished(id, result)
        case .reportSynced(let backup, let sent): syncedReported(backup: backup, sent: sent, result)
        case .movingCopiesRead(let counted): movingCopiesRead(counted, result)
        case .forward(let write, let owner): forwardAnswered(write: write, owner: owner, result)
        case .replicate(let backup, let through, let rows, let completes):
            replicationAnswered(backup: backup, through: through, rows: rows, completesSnapshots: completes, result)
        case .mergeRecords: displacedDeliveryAnswered(result)
        case .ping(let peer):
            if case .ok = result { quorum.heard(from: peer) }
        }
    }

    func handle(request: SimPeerRequest, from caller: SimCaller) {
        switch request {
        case .forwardWrite(let write): receiveForwardedWrite(write, from: caller)
        case .replicate(let batch): answer(caller, receiveReplica(batch, from: SimWorld.nodeID(caller.node)) ? .ok : .failed)
        case .mergeRecords(let rows): receiveMerge(rows, from: caller)
        case .ping: answer(caller, .ok)
        }
    }

    /// `NOTIFY` (or the listener reconnecting): read the table now.
    func tableNotified() { requestRefresh() }

    // MARK: Plumbing

    /// `CurrentPartitionTable.install`: only a newer table replaces the installed one.
    func install(_ next: PartitionTable) {
        if installed.install(next) {
            table = next
            quorum.members(next.members.map(\.id))
        }
    }

    /// `PeerPinger`: every other node of the table, each heartbeat.
    func pingPeers() {
        quorum.members(table.members.map(\.id))
        for member in table.members where member.id != id {
            call(peer: member.id, .ping, continuation: .ping(member.id), timeout: settings.leaseMs)
        }
    }

    @discardableResult
    func call(database request: SimDatabaseRequest, continuation: Continuation, timeout: Int64? = nil) -> UInt64 {
        let call = world.callDatabase(from: self, request, timeout: timeout ?? settings.databaseTimeoutMs)
        pendingCalls[call] = continuation
        return call
    }

    func call(peer: NodeID, _ request: SimPeerRequest, continuation: Continuation, timeout: Int64? = nil) {
        let call = world.callPeer(from: self, to: peer, request, timeout: timeout ?? settings.peerTimeoutMs)
        pendingCalls[call] = continuation
    }

    /// Answers a peer's request (the answer travels back over the network).
    func answer(_ caller: SimCaller, _ result: SimResult) {
        world.reply(from: index, to: caller, result)
    }

    func timer(after milliseconds: Int64, _ timer: SimTimer) {
        world.schedule(.timer(node: index, generation: generation, timer), after: milliseconds)
    }
}
