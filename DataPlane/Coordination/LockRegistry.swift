import Tenancy
import TopGunCore
import TopGunWire

/// Where the owner of locks in a cluster copies them: told after every change, with every
/// lock of the partition that changed (a node keeping copies replaces its copy of that partition).
protocol LockReplication: Sendable {
    /// Copies `locks`, then calls `copied` once (when every node it copies to has the copy, or
    /// did not answer in time). The change's grants wait for it: a holder told it holds a lock
    /// keeps it when the lock's owner dies, since the node that takes over has it.
    func changed(
        partition: Int, locks: [LockTable.State], subscribers: [SessionID: any Subscriber], copied: @escaping @Sendable () -> Void)
}

/// Distributed locks of a node: performs what `LockTable` decides, and expires leases.
public actor LockRegistry {
    private var table = LockTable()
    private var subscribers: [SessionID: any Subscriber] = [:]
    private var replication: (any LockReplication)?
    /// The epoch of a partition (its owner's term): fencing tokens start above its floor.
    private let epochOf: @Sendable (Int) -> Int64

    /// - Parameter epochOf: the current epoch of a partition (a cluster's table); a node on
    ///   its own leaves it at 1.
    public init(epochOf: @escaping @Sendable (Int) -> Int64 = { _ in 1 }) {
        self.epochOf = epochOf
    }

    public func request(_ request: LockRequest, tenant: TenantID, subscriber: any Subscriber) {
        subscribers[subscriber.id] = subscriber
        let name = LockTable.LockName(tenant: tenant, name: request.name)
        let floor = LockTable.fencingFloor(epoch: epochOf(Self.partition(of: name)))
        perform(table.request(
            name, owner: .init(session: subscriber.id, requestId: request.requestId), ttlMillis: request.ttl, nowMillis: Self.now(),
            fencingFloor: floor))
    }

    /// Forgets the locks of a partition that left this node.
    public func dropPartition(_ partition: Int) {
        publishChanges()
        table.dropLocks { Self.partition(of: $0) == partition }
    }

    /// Copies every change from now on (a node of a cluster: to the partitions' backups).
    func replicate(to replication: any LockReplication) {
        self.replication = replication
    }

    /// Copies every lock again (the partitions' backups may have changed).
    func republish() {
        guard let replication else { return }
        let now = Self.now()
        var byPartition: [Int: [LockTable.State]] = [:]
        for state in table.states(where: { _ in true }, nowMillis: now) { byPartition[Self.partition(of: state.name), default: []].append(state) }
        for (partition, states) in byPartition {
            replication.changed(partition: partition, locks: states, subscribers: subscribers, copied: {})
        }
    }

    /// Takes over the locks of `partition`, which this node now owns under a later epoch, as
    /// its previous owner last copied them; `subscribers` are their holders' and waiters'
    /// sessions (those found: the others' places are dropped).
    func restore(partition: Int, states: [LockTable.State], subscribers restored: [SessionID: any Subscriber]) {
        subscribers.merge(restored) { current, _ in current }
        perform(table.restore(states, nowMillis: Self.now(), fencingFloor: LockTable.fencingFloor(epoch: epochOf(partition))))
    }

    static func partition(of name: LockTable.LockName) -> Int {
        PartitionFunction.partition(forKey: name.name, tenantID: name.tenant.rawValue)
    }

    public func release(_ release: LockRelease, tenant: TenantID, subscriber: any Subscriber) {
        subscribers[subscriber.id] = subscriber
        let name = LockTable.LockName(tenant: tenant, name: release.name)
        perform(table.release(name, session: subscriber.id, requestId: release.requestId ?? "", fencingToken: release.fencingToken, nowMillis: Self.now()))
    }

    /// Drops a deleted tenant's locks, holders and waiters alike (its sessions are closed).
    public func removeTenant(_ tenant: TenantID) {
        table.removeTenant(tenant)
    }

    public func removeSession(_ session: SessionID) {
        subscribers.removeValue(forKey: session)
        perform(table.removeSession(session, nowMillis: Self.now()))
    }

    /// Checks leases every `interval` until cancelled.
    public func runExpiry(interval: Duration = .milliseconds(250)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            perform(table.expire(nowMillis: Self.now()))
        }
    }

    private func perform(_ actions: [LockTable.Action]) {
        var grants: [Int: [Grant]] = [:]
        defer { publishChanges(grants) }
        for action in actions {
            switch action {
            case .granted(let name, let owner, let token):
                guard let subscriber = subscribers[owner.session] else { continue }
                let message = TopGunMessage.lockGranted(LockGranted(requestId: owner.requestId, name: name.name, fencingToken: token))
                if replication == nil {
                    subscriber.send(message)
                } else {
                    grants[Self.partition(of: name), default: []].append(Grant(subscriber: subscriber, message: message))
                }
            case .released(let name, let session, let requestId, let success):
                subscribers[session]?.send(.lockReleased(LockReleased(requestId: requestId, name: name.name, success: success)))
            case .unknownLock(let name, let session, let requestId):
                let subscriber = subscribers[session]
                subscriber?.send(.errorMessage(.make(.notFound, "lock '\(name.name)' is not held", details: ["name": .string(name.name)])))
                subscriber?.send(.lockReleased(LockReleased(requestId: requestId, name: name.name, success: false)))
            }
        }
    }

    /// A `LOCK_GRANTED` waiting for its lock's copy to reach the other nodes.
    private struct Grant: Sendable {
        var subscriber: any Subscriber
        var message: TopGunMessage

        static func send(_ grants: [Grant]) {
            for grant in grants { grant.subscriber.send(grant.message) }
        }
    }

    /// Hands the locks that changed, by partition, to the replication; each partition's
    /// grants go out once its copy is made.
    private func publishChanges(_ grants: [Int: [Grant]] = [:]) {
        var grants = grants
        let names = table.takeChanged()
        if let replication, !names.isEmpty {
            let now = Self.now()
            for partition in Set(names.map(Self.partition(of:))) {
                let waiting = grants.removeValue(forKey: partition) ?? []
                replication.changed(
                    partition: partition, locks: table.states(where: { Self.partition(of: $0) == partition }, nowMillis: now), subscribers: subscribers,
                    copied: { Grant.send(waiting) })
            }
        }
        // A grant always changes its lock; were one left, it still goes out.
        for (_, left) in grants { Grant.send(left) }
    }

    static func now() -> Int64 { SystemClock().nowMillis() }
}
