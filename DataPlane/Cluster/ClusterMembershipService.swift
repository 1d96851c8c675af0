import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TopGunCore

/// A node's part in the cluster (design.md §6), as one service: it renews the node's lease,
/// coordinates while it holds the coordinator lock, and applies each new partition table.
/// At a graceful stop it leaves: it marks its lease LEAVING, waits (at most
/// `leaveTimeout`) until the coordinator has moved its partitions to others and they are
/// handed over, then deletes its lease.
public final class ClusterMembershipService: Service, Sendable {
    let store: any ClusterStore
    let settings: ClusterSettings
    let ownership: PartitionOwnership
    let table: CurrentPartitionTable
    let endpoints: AdvertisedEndpoints
    let logger: Logger
    /// The lease as the node writes it (its endpoints fill in once bound; its incarnation
    /// changes when a lost lease is taken again).
    private let lease: Mutex<ClusterLease>
    /// Set once the lease is deleted at a graceful stop: a failed renewal then is no loss.
    private let hasLeft = Atomic<Bool>(false)
    /// The leases last read, for `GET /cluster`.
    private let view = Mutex(MembershipView(leases: []))
    public let credentials: ClusterCredentials

    let metrics: ClusterMetrics
    /// Told of each successful renewal (REPLICATED acks need a held lease).
    let leaseWatch: LeaseWatch?
    /// Called after a newer table was applied (clients following the map are sent it).
    let onNewTable: (@Sendable () -> Void)?
    /// The cluster port, whose bound port goes into the lease.
    let transport: ClusterTransport?
    /// Where the leases last read are shared (the transport finds peers there).
    let sharedLeases: SynchronizedBox<MembershipView>?

    init(
        store: any ClusterStore, settings: ClusterSettings, credentials: ClusterCredentials, lease: ClusterLease,
        incarnation: SynchronizedBox<String>, ownership: PartitionOwnership, table: CurrentPartitionTable, endpoints: AdvertisedEndpoints,
        transport: ClusterTransport? = nil, leases: SynchronizedBox<MembershipView>? = nil, onNewTable: (@Sendable () -> Void)? = nil,
        metrics: ClusterMetrics = ClusterMetrics(), leaseWatch: LeaseWatch? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.leaseWatch = leaseWatch
        self.onNewTable = onNewTable
        self.transport = transport
        self.sharedLeases = leases
        self.store = store
        self.settings = settings
        self.credentials = credentials
        self.lease = Mutex(lease)
        self.incarnation = incarnation
        self.ownership = ownership
        self.table = table
        self.endpoints = endpoints
        self.logger = logger
    }

    /// This run's incarnation, as flushes claim it (`TableOwnershipClaims` reads it).
    let incarnation: SynchronizedBox<String>

    /// The leases last read.
    public var membership: MembershipView { view.withLock { $0 } }

    /// Takes the node's lease, waiting out the lease of a previous run of the same node id
    /// (a restart after a crash); throws `nodeIdInUse` when another live node keeps it.
    public static func acquire(_ lease: ClusterLease, in store: any ClusterStore, settings: ClusterSettings, logger: Logger) async throws {
        let deadline = ContinuousClock.now + settings.leaseDuration + settings.heartbeatInterval * 2
        var logged = false
        while true {
            do {
                try await store.acquire(lease, duration: settings.leaseDuration)
                return
            } catch ClusterMembershipError.nodeIdInUse where ContinuousClock.now < deadline {
                if !logged {
                    logger.notice("waiting for the lease of a previous run of this node id to expire", metadata: ["node": "\(lease.node)"])
                    logged = true
                }
                try await Task.sleep(for: settings.heartbeatInterval / 2)
            }
        }
    }

    public func run() async {
        let changes = store.tableChanges()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeat() }
            group.addTask { await self.coordinate() }
            group.addTask { await self.follow(changes) }
            // Leaving happens while the loops still run: the table that moves this node's
            // partitions away must be applied here.
            try? await gracefulShutdown()
            // Cancelled rather than stopped: no time for a hand-over (the lease expires, and
            // the partitions fail over).
            if !Task.isCancelled { await self.leave() }
            group.cancelAll()
        }
    }

    /// Called once the node's server is bound: writes its client endpoints into the lease at
    /// once (the coordinator gives partitions only to nodes clients can reach), then returns
    /// when the node has applied a table that names it and holds what it owns.
    public func waitUntilServing() async {
        let clusterPort = try? await transport?.waitUntilBound()
        let current = lease.withLock { lease in
            if let clusterPort { lease.clusterEndpoint = "\(settings.advertiseHost):\(clusterPort)" }
            lease.websocketURL = endpoints.websocket
            lease.httpURL = endpoints.http
            return lease
        }
        if (try? await store.renew(current, duration: settings.leaseDuration)) == true { leaseWatch?.renewed() }
        if let leases = try? await store.leases() {
            view.withLock { $0 = MembershipView(leases: leases) }
            sharedLeases?.set(MembershipView(leases: leases))
        }
        while !Task.isCancelled {
            await refreshTable()
            if await ownership.isServing { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: Loops

    private func heartbeat() async {
        var lastRenewal = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: settings.heartbeatInterval)
            if Task.isCancelled { return }
            let current = lease.withLock { lease in
                lease.websocketURL = endpoints.websocket
                lease.httpURL = endpoints.http
                return lease
            }
            do {
                if try await store.renew(current, duration: settings.leaseDuration) {
                    lastRenewal = .now
                    leaseWatch?.renewed()
                } else if !hasLeft.load(ordering: .acquiring) {
                    await leaseLost()
                }
                let leases = MembershipView(leases: try await store.leases())
                view.withLock { $0 = leases }
                sharedLeases?.set(leases)
                metrics.members.record(leases.leases.filter(\.isLive).count)
            } catch {
                if ContinuousClock.now - lastRenewal > settings.leaseDuration {
                    logger.error("cannot renew the cluster lease; it has expired", metadata: ["error": "\(error)"])
                } else {
                    logger.warning("cannot renew the cluster lease", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The lease expired before it was renewed: others own this node's partitions now. It
    /// gives them up and joins again under a new incarnation.
    private func leaseLost() async {
        logger.error("cluster lease lost; giving up every partition and joining again", metadata: ["node": "\(settings.node)"])
        let renewed = lease.withLock { lease in
            lease.incarnation = UUID().uuidString.lowercased()
            return lease
        }
        // The new run first: from here on, tables computed for the previous run are not
        // applied (the coordinator fails its partitions over first), and flushes claim the
        // new run, which the database refuses until its lease is taken.
        incarnation.set(renewed.incarnation)
        await ownership.relinquishAll()
        do {
            try await Self.acquire(renewed, in: store, settings: settings, logger: logger)
            leaseWatch?.renewed()
        } catch {
            logger.error("cannot take the cluster lease again", metadata: ["error": "\(error)"])
        }
    }

    private func coordinate() async {
        while !Task.isCancelled {
            do {
                let coordinated = try await store.coordinate(as: settings.node) { session in
                    self.logger.info("coordinating the cluster", metadata: ["node": "\(self.settings.node)"])
                    while !Task.isCancelled {
                        guard await session.stillHolds() else { return }
                        let view = MembershipView(leases: try await self.store.leases())
                        let published = try await self.store.table()
                        let synced = try await self.store.syncedReplicas()
                        if let next = MigrationPlanner.next(
                            after: published, view: view, backupCount: self.settings.backupCount, protocolVersion: ClusterSettings.protocolVersion,
                            maxConcurrentMigrations: self.settings.maxConcurrentMigrations,
                            synced: { partition, epoch in Set((synced[partition] ?? [:]).filter { $0.value == epoch }.keys) })
                        {
                            try await session.publish(next, replacing: published?.version, backupCount: self.settings.backupCount, coordinator: self.settings.node)
                            self.logger.info("partition table published", metadata: [
                                "version": "\(next.version)", "members": "\(next.members.map(\.id.rawValue))",
                            ])
                        }
                        try await Task.sleep(for: self.settings.heartbeatInterval / 4)
                    }
                }
                if coordinated { logger.notice("stopped coordinating the cluster") }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("coordinator lock lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: settings.heartbeatInterval)
        }
    }

    private func follow(_ changes: AsyncStream<Void>) async {
        await withTaskGroup(of: Void.self) { group in
            let (ticks, tick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            group.addTask {
                for await _ in changes { tick.yield() }
            }
            group.addTask {
                while !Task.isCancelled {
                    tick.yield()
                    try? await Task.sleep(for: self.settings.heartbeatInterval)
                }
                tick.finish()
            }
            for await _ in ticks {
                if Task.isCancelled { break }
                await refreshTable()
            }
            group.cancelAll()
        }
    }

    /// Reads the published table and applies it if it is newer than the one applied.
    func refreshTable() async {
        do {
            guard let published = try await store.table() else { return }
            // Computed for a previous run of this node (a restart, or a lease lost and taken
            // again): nothing in it is this run's. The coordinator's next table fails that
            // run's partitions over and names this one.
            if published.namesAnotherRun(of: settings.node, than: incarnation.get()) { return }
            let applied = await ownership.appliedVersion
            if applied == nil || published.version > applied! {
                await ownership.apply(published)
                onNewTable?()
                metrics.tableVersion.record(published.version)
                metrics.partitionsOwned.record(published.partitions(ownedBy: settings.node).count)
                metrics.partitionsBackedUp.record(published.assignments.filter { $0.replicas.contains(settings.node) }.count)
                metrics.migrations.record(published.assignments.filter { $0.migrationTarget != nil }.count)
            } else {
                await ownership.retryUnheld()
            }
        } catch {
            logger.warning("cannot read the partition table", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Leaving

    private func leave() async {
        let deadline = ContinuousClock.now + settings.leaveTimeout
        let leaving = lease.withLock { lease in
            lease.status = .leaving
            return lease
        }
        logger.info("leaving the cluster: handing partitions over", metadata: ["node": "\(settings.node)"])
        _ = try? await store.renew(leaving, duration: settings.leaseDuration)
        var nextReport = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let current = table.table
            let owned = current.partitions(ownedBy: settings.node)
            let held = await ownership.heldPartitions
            if owned.isEmpty, held.isEmpty { break }
            if ContinuousClock.now >= nextReport {
                // A slow hand-over says what it waits for.
                nextReport = ContinuousClock.now + .seconds(5)
                logger.notice("still handing partitions over", metadata: [
                    "table": "\(current.version)", "owned": "\(owned.count)", "held": "\(held.count)",
                    "moving": "\(owned.filter { current.assignment(of: $0).migrationTarget != nil }.count)",
                ])
            }
            // Alone, there is no one to hand over to.
            if let leases = try? await store.leases(),
                !leases.contains(where: { $0.isLive && $0.lease.node != settings.node && $0.lease.status == .active && $0.lease.hasClientEndpoints })
            {
                logger.notice("no other node to hand partitions to; leaving them in storage")
                break
            }
            try? await Task.sleep(for: settings.heartbeatInterval / 4)
        }
        if ContinuousClock.now >= deadline {
            logger.warning("partitions not handed over within the leave timeout; they fail over once the lease is gone")
        }
        hasLeft.store(true, ordering: .releasing)
        do {
            try await store.release(leaving)
            logger.info("left the cluster", metadata: ["node": "\(settings.node)"])
        } catch {
            logger.warning("cannot delete the lease; it expires by itself", metadata: ["error": "\(error)"])
        }
    }
}
