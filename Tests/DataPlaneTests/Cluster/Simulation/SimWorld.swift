@testable import DataPlane
import Foundation
import TopGunCore

/// One simulated cluster run for one seed: the nodes, the database, the network, the clients
/// and the faults, driven by one event queue in virtual time. Single-threaded and created
/// inside the task that runs it; everything it decides comes from the seed.
final class SimWorld {
    let seed: UInt64
    let settings: SimSettings
    let verbose: Bool

    private(set) var now: Int64 = 0
    /// `now`, for production code that reads a clock through a closure.
    let clock = SimClockReading()
    private var queue = SimEventQueue<SimEvent>()
    let database: SimDatabase
    var network: SimNetwork
    var faults: SimRandom
    var clients: SimRandom
    /// Failures of single statements (`SimSettings.reportFailureRate`).
    var statementFaults: SimRandom

    var nodes: [SimNode?]
    private var generations: [Int]
    private var nextCall: UInt64 = 0
    private var nextSession: UInt64 = 0

    // What the invariants look at.
    var writes: [SimWrite] = []
    var acks: [SimAck] = []
    var failedWrites = 0
    var crashes: [(time: Int64, node: NodeID)] = []
    var orTags: [String: [String]] = [:]

    enum Phase { case faulty, settling, settled, stuck }
    var phase = Phase.faulty
    private(set) var faultyEvents = 0
    private(set) var settlingEvents = 0
    var settledAt: Int64?
    var stuckReason: String?
    var settleDeadline: Int64 = .max
    /// A liveness failure seen while running (the first is kept): reported at the end.
    var livenessFailure: String?
    /// Planner runs (the costliest step) and tables published, for tuning.
    var plannerRuns = 0
    var tablesPublished = 0
    private(set) var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    private(set) var lines: [String] = []

    static func nodeID(_ index: Int) -> NodeID { NodeID("n\(index)") }

    /// A partition whose synced reports the trace shows (debugging aid).
    var watchedPartition: Int? = ProcessInfo.processInfo.environment["TOPGUN_SIM_PARTITION"].flatMap(Int.init)

    init(seed: UInt64, settings: SimSettings, verbose: Bool = false) {
        self.seed = seed
        self.settings = settings
        self.verbose = verbose
        var random = SimRandom(seed: seed)
        network = SimNetwork(chaos: settings.chaos, random: random.split())
        faults = random.split()
        clients = random.split()
        statementFaults = random.split()
        database = SimDatabase(leaseDuration: settings.leaseMs, fencing: settings.fencing, checkSyncedReports: settings.checkSyncedReports)
        nodes = Array(repeating: nil, count: settings.nodeCount)
        generations = Array(repeating: 0, count: settings.nodeCount)
    }

    // MARK: Running

    func run() {
        // Half the clusters start together (the first table names every node), half one by
        // one (the first node takes everything, the others take their share by migration).
        let stagger: Int64 = faults.chance(0.5) ? 0 : 50
        for index in nodes.indices { schedule(.restart(node: index), after: clients.int64(0...stagger)) }
        schedule(.clientWrite, after: 100)
        schedule(.fault, after: faults.int64(settings.faultGapMs))
        while phase == .faulty || phase == .settling, let (time, event) = queue.pop() {
            now = time
            clock.set(time)
            let acted = dispatch(event)
            if acted { mix(UInt64(bitPattern: time), code(event)) }
            if phase == .faulty, acted {
                faultyEvents += 1
                if faultyEvents >= settings.maxEvents { beginSettling() }
            } else if acted {
                settlingEvents += 1
            }
        }
    }

    /// Performs one event; false when it found nothing to do (a timeout after the answer, a
    /// message to a run that ended), which does not count as an event of the schedule.
    private func dispatch(_ event: SimEvent) -> Bool {
        switch event {
        case .peerRequest(let from, let fromGeneration, let to, let toGeneration, let call, let request):
            guard let node = live(to, toGeneration), network.canReach(from, to) else { return false }
            node.handle(request: request, from: SimCaller(node: from, generation: fromGeneration, call: call))
        case .reply(let from, let to, let generation, let call, let result):
            guard let node = live(to, generation), node.pendingCalls[call] != nil else { return false }
            if from < 0 ? !network.reachesDatabase(to) : !network.canReach(from, to) { return false }
            node.handle(call: call, result)
        case .databaseArrival(let from, let generation, let call, let request):
            guard network.reachesDatabase(from) else { return false }
            let result = execute(request, from: from, generation: generation)
            schedule(.reply(from: -1, to: from, generation: generation, call: call, result), after: network.databaseDelay())
        case .callTimeout(let index, let generation, let call):
            guard let node = live(index, generation), node.pendingCalls[call] != nil else { return false }
            node.handle(call: call, .failed)
        case .timer(let index, let generation, let timer):
            guard let node = live(index, generation) else { return false }
            node.handle(timer)
        case .tableNotification(let index, let generation):
            guard let node = live(index, generation), network.reachesDatabase(index) else { return false }
            node.tableNotified()
        case .clientWrite:
            guard phase == .faulty else { return false }
            clientWrite()
            schedule(.clientWrite, after: clients.int64(settings.writeGapMs))
        case .fault:
            guard phase == .faulty else { return false }
            injectFault()
            schedule(.fault, after: faults.int64(settings.faultGapMs))
        case .restart(let index):
            // Restarts race the coordinator freely: a run that comes back before its previous
            // run's lease expired waits it out, then may take its lease before anyone saw it
            // expire (the coordinator then fails the previous run over by its incarnation).
            guard nodes[index] == nil else { return false }
            generations[index] += 1
            let node = SimNode(world: self, index: index, generation: generations[index])
            nodes[index] = node
            log("\(node.id) starts (run \(generations[index]))")
            node.start()
        case .settleCheck:
            checkSettled()
        }
        return true
    }

    private func live(_ index: Int, _ generation: Int) -> SimNode? {
        guard let node = nodes[index], node.generation == generation else { return nil }
        return node
    }

    func schedule(_ event: SimEvent, after milliseconds: Int64) { queue.schedule(event, at: now + max(0, milliseconds)) }

    func schedule(_ event: SimEvent, at time: Int64) { queue.schedule(event, at: max(now, time)) }

    // MARK: Requests

    func callDatabase(from node: SimNode, _ request: SimDatabaseRequest, timeout: Int64) -> UInt64 {
        nextCall += 1
        schedule(.callTimeout(node: node.index, generation: node.generation, call: nextCall), after: timeout)
        // Cut off from the database, the request never arrives: the caller times out.
        if network.reachesDatabase(node.index) {
            schedule(.databaseArrival(from: node.index, generation: node.generation, call: nextCall, request), after: network.databaseDelay())
        }
        return nextCall
    }

    func callPeer(from node: SimNode, to peer: NodeID, _ request: SimPeerRequest, timeout: Int64) -> UInt64 {
        nextCall += 1
        let call = nextCall
        schedule(.callTimeout(node: node.index, generation: node.generation, call: call), after: timeout)
        let target = index(of: peer)
        guard let targetNode = nodes[target] else {
            // Nothing listens on its port: the connection is refused at once.
            schedule(.reply(from: target, to: node.index, generation: node.generation, call: call, .failed), after: network.databaseDelay())
            return call
        }
        for delay in network.deliveries() {
            schedule(.peerRequest(
                from: node.index, fromGeneration: node.generation, to: target, toGeneration: targetNode.generation, call: call, request), after: delay)
        }
        return call
    }

    func reply(from index: Int, to caller: SimCaller, _ result: SimResult) {
        for delay in network.deliveries() {
            schedule(.reply(from: index, to: caller.node, generation: caller.generation, call: caller.call, result), after: delay)
        }
    }

    func index(of node: NodeID) -> Int { Int(node.rawValue.dropFirst())! }

    func newSession() -> UInt64 {
        nextSession += 1
        return nextSession
    }

    /// A node gives up its coordinator session (closes the connection): the database hears of
    /// it now, or once the node's link to it heals (`healDatabase`).
    func endSession(node: Int, generation: Int, session: UInt64) {
        guard network.reachesDatabase(node) else { return }
        database.endSession(SimDatabase.LockHolder(node: node, generation: generation, session: session))
    }

    /// Whether the run of a node that holds `holder`'s session still uses it.
    func usesSession(_ holder: SimDatabase.LockHolder) -> Bool {
        guard let node = nodes[holder.node], node.generation == holder.generation else { return false }
        return node.coordinatorSession == holder.session
    }

    /// One transaction, at the instant its request reaches the database.
    private func execute(_ request: SimDatabaseRequest, from node: Int, generation: Int) -> SimResult {
        let holder = { (session: UInt64) in SimDatabase.LockHolder(node: node, generation: generation, session: session) }
        switch request {
        case .acquire(let lease): return .bool(database.acquire(lease, now: now))
        case .renew(let lease): return .bool(database.renew(lease, now: now))
        case .tryLock(let session):
            // A run that ended has no connection to hold a lock with.
            guard live(node, generation) != nil else { return .bool(false) }
            if database.tryLock(holder(session)) { return .bool(true) }
            if let evicted = database.evictStaleLock(now: now) {
                log("n\(node) ends the coordinator session of n\(evicted.node) (run \(evicted.generation)): its lease expired")
            }
            return .bool(false)
        case .coordinatorRead(let session):
            guard database.holds(holder(session)) else { return .failed }
            return .coordinatorView(leases: database.memberLeases(now: now), table: database.table, synced: database.synced)
        case .publish(let session, let table, let expected):
            guard database.publish(table, replacing: expected, by: holder(session)) else { return .failed }
            log("table v\(table.version) published by n\(node): \(SimWorld.describe(table))")
            if let watched = watchedPartition {
                let row = table.assignment(of: watched)
                log("  partition \(watched): owner \(row.owner), backups \(row.backups), epoch \(row.epoch), target \(row.migrationTarget?.rawValue ?? "none"); runs \(table.members.map { "\($0.id)=\($0.incarnation ?? "?")" })")
            }
            mix(UInt64(table.version), 0x7AB1E)
            tablesPublished += 1
            for index in nodes.indices {
                if let listener = nodes[index], network.reachesDatabase(index) {
                    schedule(.tableNotification(node: index, generation: listener.generation), after: network.databaseDelay())
                }
            }
            return .ok
        case .readTable: return .table(database.table)
        case .load(let partitions): return .rows(database.load(partitions))
        case .store(let rows, let claim):
            let refused = database.store(rows, claim: claim, now: now)
            log("n\(node) flush of \(rows.count) rows as \(claim.incarnation): refused \(refused)")
            return .refused(refused)
        case .reportSynced(let reports):
            if phase == .faulty, statementFaults.chance(settings.reportFailureRate) {
                log("n\(node)'s report of \(reports.count) complete copies fails")
                return .failed
            }
            for report in reports where report.partition == watchedPartition {
                log("n\(node) reports \(report.node)'s copy of partition \(report.partition) synced under epoch \(report.epoch) (run \(report.incarnation ?? "?"))")
            }
            database.reportSynced(reports)
            return .ok
        case .syncedReplicas: return .synced(database.synced)
        }
    }

    // MARK: Trace

    func log(_ message: @autoclosure () -> String) {
        guard verbose else { return }
        lines.append("[\(now)ms] \(message())")
    }

    /// Folds values into the run's digest: two runs of one seed must end with the same one.
    func mix(_ values: UInt64...) {
        for value in values {
            digest = (digest ^ value) &* 0x0000_0100_0000_01B3
        }
    }

    private func code(_ event: SimEvent) -> UInt64 {
        switch event {
        case .peerRequest(let from, _, let to, _, let call, _): return 1 | UInt64(from) << 8 | UInt64(to) << 12 | call << 16
        case .reply(_, let to, _, let call, _): return 2 | UInt64(to) << 8 | call << 16
        case .databaseArrival(let from, _, let call, _): return 3 | UInt64(from) << 8 | call << 16
        case .callTimeout(let node, _, let call): return 4 | UInt64(node) << 8 | call << 16
        case .timer(let node, _, _): return 5 | UInt64(node) << 8
        case .tableNotification(let node, _): return 6 | UInt64(node) << 8
        case .clientWrite: return 7 | UInt64(writes.count) << 8
        case .fault: return 8
        case .restart(let node): return 9 | UInt64(node) << 8
        case .settleCheck: return 10
        }
    }

    /// The leases as the coordinator's planner sees them (with `recordRuns` off, every run
    /// looks the same: tables record no run a restart could be told by).
    func plannerView(_ leases: [MemberLease]) -> MembershipView {
        guard !settings.recordRuns else { return MembershipView(leases: leases) }
        return MembershipView(leases: leases.map { row in
            var row = row
            row.lease.incarnation = ""
            return row
        })
    }

    static func describe(_ table: PartitionTable) -> String {
        let members = table.members.map(\.id.rawValue).joined(separator: ",")
        let moving = table.assignments.filter { $0.migrationTarget != nil }.count
        var owned: [String: Int] = [:]
        for assignment in table.assignments { owned[assignment.owner.rawValue, default: 0] += 1 }
        let counts = owned.keys.sorted().map { "\($0):\(owned[$0]!)" }.joined(separator: " ")
        return "members [\(members)] owners {\(counts)} moving \(moving)"
    }
}
