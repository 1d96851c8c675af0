import Logging
import ServiceLifecycle
import TopGunCore

/// The cluster parts of one data-plane node, made and wired together here (as
/// `NodeComponents` does for the rest): the cluster port, forwarding, replication to backups,
/// the copies kept as a backup, the partitions' ownership and the membership service.
///
/// Made in two steps, because the node's parts need the durability pipeline and the peers
/// made here, and the inbox and replication need the node's parts: `init`, then `attach`.
final class ClusterAssembly: Sendable {
    let join: ClusterJoin
    let settings: ClusterSettings
    let store: any ClusterStore
    let transport: ClusterTransport
    let peers: ClusterPeers
    /// Merkle sync of maps whose partitions lie on several nodes.
    let mapReads: ClusterMapReads
    let replicator: Replicator
    let replicas: ReplicaHolder
    let durability: ClusterDurability
    let ownership: PartitionOwnership
    let membership: ClusterMembershipService
    /// Topics, counters and locks across nodes.
    let coordination: ClusterCoordination
    /// Whether this node reaches a majority of the table's nodes, and who keeps it informed.
    let quorum: QuorumWatch
    let pinger: PeerPinger
    private let inbox = SynchronizedBox<ClusterInbox?>(nil)
    /// Tenants' quotas held for the cluster (made in `attach`: it needs the node's parts).
    private let quotaService = SynchronizedBox<ClusterQuotaService?>(nil)
    private let leases: SynchronizedBox<MembershipView>
    private let announce = SynchronizedBox<(@Sendable () -> Void)?>(nil)

    init(
        join: ClusterJoin, settings: ClusterSettings, store: any ClusterStore, writeBehind: WriteBehindQueue, storage: any ServerStorage,
        partitions: LocalPartitions, table: CurrentPartitionTable, endpoints: AdvertisedEndpoints, persistTimeout: Duration, logger: Logger
    ) throws {
        self.join = join
        self.settings = settings
        self.store = store
        let inbox = self.inbox
        let leases = SynchronizedBox(MembershipView(leases: []))
        self.leases = leases
        let coordinationBox = SynchronizedBox<ClusterCoordination?>(nil)
        transport = ClusterTransport(
            identity: try ClusterIdentity(nodeId: settings.node, clusterId: join.credentials.clusterId, secret: join.credentials.secret),
            configuration: ClusterTransportConfiguration(host: settings.clusterHost, port: settings.clusterPort),
            handler: { peer, type, body in
                guard let inbox = inbox.get(), let coordination = coordinationBox.get() else {
                    throw ClusterMessageError("this node is still starting")
                }
                return try await inbox.handle(from: peer, type: type, body: body, coordination: coordination)
            },
            resolve: { node in leases.get().leases.first { $0.lease.node == node && $0.isLive }?.lease.clusterEndpoint },
            logger: logger)
        let metrics = ClusterMetrics()
        coordination = ClusterCoordination(
            localNode: settings.node, incarnation: join.incarnation, transport: transport, table: table, leases: leases,
            heartbeat: settings.heartbeatInterval, metrics: metrics, logger: logger)
        coordinationBox.set(coordination)
        peers = ClusterPeers(transport: transport, timeout: persistTimeout + .seconds(2), metrics: metrics)
        mapReads = ClusterMapReads(transport: transport, maps: partitions.maps, timeout: .seconds(10))
        replicator = Replicator(transport: transport, table: table, partitions: partitions, writeBehind: writeBehind, store: store, logger: logger)
        let displaced = join.displaced
        replicas = ReplicaHolder(table: table, handOver: { rows in await displaced.handOver(rows) }, logger: logger)
        let lease = LeaseWatch(leaseDuration: settings.leaseDuration, heartbeatInterval: settings.heartbeatInterval)
        lease.renewed()  // taken by `ClusterJoin` just before
        // A peer silent for a lease's length counts as unreachable: the same time after which
        // the database counts it gone.
        quorum = QuorumWatch(localNode: settings.node, window: settings.leaseDuration)
        pinger = PeerPinger(transport: transport, table: table, quorum: quorum, interval: settings.heartbeatInterval, timeout: settings.leaseDuration)
        durability = ClusterDurability(writeBehind: writeBehind, replicator: replicator, lease: lease, table: table, quorum: quorum)
        ownership = PartitionOwnership(
            table: table, partitions: partitions, writeBehind: writeBehind, storage: storage,
            displaced: { rows in await displaced.handOver(rows) }, logger: logger)
        let announce = self.announce
        membership = ClusterMembershipService(
            store: store, settings: settings, credentials: join.credentials, lease: join.lease, incarnation: join.incarnation,
            ownership: ownership, table: table, endpoints: endpoints, transport: transport, leases: leases,
            onNewTable: { announce.get()?() }, metrics: metrics, leaseWatch: lease, logger: logger)
    }

    /// Connects the node's parts: what peers send reaches them, rows of lost partitions go
    /// to their owners, and clients following the partition map hear of each new table.
    func attach(_ components: NodeComponents, persistTimeout: Duration) async {
        let local = ClusterInbox(
            writes: components.writePath, maps: components.maps, mapKinds: components.mapKinds, counters: components.counters,
            journal: components.journal, durability: durability, partitionTable: components.partitionTable, clock: components.clock,
            persistTimeout: persistTimeout, replicas: replicas)
        inbox.set(local)
        let (peers, table, localNode) = (self.peers, components.partitionTable, settings.node)
        await join.displaced.deliver { rows in
            try await peers.handOver(rows, table: table.table, localNode: localNode, mergeHere: { try await local.merge($0) })
        }
        await ownership.attach(replicas: replicas, replicator: replicator, durability: durability)
        await replicator.report(to: membership.metrics)
        await join.displaced.report(to: membership.metrics)
        components.coordination.set(coordination)
        await components.locks.replicate(to: coordination)
        await ownership.onPromotion { [coordination] partition in await coordination.restoreLocks(partition: partition) }
        coordination.attach(ClusterCoordination.Locals(
            sessions: components.sessions, maps: components.maps, topics: components.topics, locks: components.locks, counters: components.counters, journal: components.journal,
            durability: durability, routing: components.readRouting, cleanup: components.sessionCleanup))
        if let quotaStore = store as? any ClusterQuotaStore {
            let (leases, incarnation) = (self.leases, join.incarnation)
            let members: @Sendable () -> Int = { max(1, leases.get().leases.filter(\.isLive).count) }
            let slots = ClusterSlots(store: quotaStore, node: settings.node, incarnation: { incarnation.get() }, members: members, logger: components.logger)
            components.policies.useCluster(.init(slots: slots, members: members))
            quotaService.set(ClusterQuotaService(
                store: quotaStore, node: settings.node, policies: components.policies, sessions: components.sessions, usage: components.usage,
                slots: slots, members: members, logger: components.logger))
        }
        let (sessions, mapHandler, coordination) = (components.sessions, components.partitionMapHandler, coordination)
        announce.set {
            mapHandler.announce(to: sessions)
            Task { await coordination.tableChanged() }
        }
    }

    /// In start order (they stop in reverse): the port first (it stops last), then
    /// replication and hand-over, then membership (whose leave runs first at a stop).
    var services: [any Service] { [transport, replicator, join.displaced, coordination, pinger] + (quotaService.get().map { [$0] } ?? []) }
}
