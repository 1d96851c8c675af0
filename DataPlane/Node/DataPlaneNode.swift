import TopGunWire
import Foundation
import Hummingbird
import Logging
import Metadata
import ServiceLifecycle
import Tenancy
import TopGunCore
import UnixSignals

/// A data-plane node, assembled: storage with write-behind, the loaded maps, and the server.
///
/// `run` loads every partition before the server accepts a connection (so no client ever
/// sees a half-loaded map), serves until SIGTERM/SIGINT, then shuts down gracefully: stop
/// accepting, close sockets with 1001, drain the write-behind queue.
public struct DataPlaneNode: Sendable {
    /// What a running node tells its starter.
    public struct Bound: Sendable {
        public var port: Int
        public var webSocketURL: String
        public var httpURL: String
        /// The most client connections the node holds at once.
        public var maxConnections: Int
    }

    /// Where a node's records live.
    public enum RecordStorage: Sendable {
        /// In a database: write-behind persists every change, and the node loads the
        /// partitions from it before it accepts connections.
        case persistent(any ServerStorage)
        /// In the node's maps and nowhere else (`--storage memory`): nothing is written or
        /// loaded, and everything is lost at exit (`MemoryOnlyDurability`).
        case memoryOnly
    }

    public let configuration: DataPlaneConfiguration
    public let storage: RecordStorage
    public let authenticator: any Authenticator
    /// The metadata store whose change stream the node follows (keys, tenants).
    public let metadata: (any MetadataStore)?
    /// Set on a node of a cluster: where membership lives, and how this node takes part.
    public let cluster: (store: any ClusterStore, settings: ClusterSettings)?
    public let logger: Logger

    public init(
        configuration: DataPlaneConfiguration, storage: RecordStorage, authenticator: any Authenticator,
        metadata: (any MetadataStore)? = nil, cluster: (store: any ClusterStore, settings: ClusterSettings)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.storage = storage
        self.authenticator = authenticator
        self.metadata = metadata
        self.cluster = cluster
        self.logger = logger
    }

    /// Loads the partitions, then serves until a shutdown signal. `alongside` are services
    /// of the same process that start and stop with the node (`topgun dev` runs the control
    /// plane here); they stop after the node's server and before the write-behind drains.
    public func run(
        gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint], alongside: [any Service] = [],
        onBound: @escaping @Sendable (Bound) async -> Void = { _ in }
    ) async throws {
        let writeBehind: WriteBehindQueue?
        var durability: any DurabilityPipeline
        // A node of a cluster: its lease is taken before anything else, so that a second
        // node with the same id stops here with a clear reason.
        var joining: ClusterJoin?
        if let cluster {
            guard case .persistent = storage else { throw ClusterMembershipError.leaseLost(cluster.settings.node) }
            joining = try await ClusterJoin.start(store: cluster.store, settings: cluster.settings, logger: logger)
        }
        let localNode = NodeID(configuration.nodeId)
        let partitionTable = CurrentPartitionTable(localNode: localNode, table: joining == nil ? nil : .unpublished(localNode))
        switch storage {
        case .persistent(let storage):
            try await storage.prepare()
            // A graceful stop gives the drain most of its time (the sockets close first).
            var claims: (any OwnershipClaims)?
            var displaced: (@Sendable ([StoredRecord]) async -> Void)?
            if let joining {
                claims = TableOwnershipClaims(table: partitionTable, incarnation: joining.incarnation)
                let sink = joining.displaced
                displaced = { rows in await sink.handOver(rows) }
            }
            writeBehind = WriteBehindQueue(
                storage: storage, configuration: WriteBehindConfiguration(drainTimeout: configuration.shutdownTimeout * 3 / 5),
                claims: claims, displaced: displaced, logger: logger)
            durability = writeBehind!
        case .memoryOnly:
            writeBehind = nil
            durability = MemoryOnlyDurability()
        }
        let endpoints = AdvertisedEndpoints()
        // The maps and counters come first: the cluster's parts need them, and the node's
        // other parts need the cluster's durability pipeline and peers.
        let maps = MapDirectory(clocks: TenantClocks(nodeId: configuration.nodeId))
        let counters = CounterRegistry()
        let locks = LockRegistry { [partitionTable] partition in partitionTable.table.assignment(of: partition).epoch }
        var assembly: ClusterAssembly?
        if let joining, let cluster, let writeBehind, case .persistent(let storage) = storage {
            assembly = try ClusterAssembly(
                join: joining, settings: cluster.settings, store: cluster.store, writeBehind: writeBehind, storage: storage,
                partitions: LocalPartitions(maps: maps, counters: counters, locks: locks), table: partitionTable, endpoints: endpoints,
                persistTimeout: configuration.persistTimeout, logger: logger)
            durability = assembly!.durability
        }
        let components = NodeComponents(
            configuration: configuration, durability: durability, authenticator: authenticator, logger: logger, endpoints: endpoints,
            policies: TenantPolicies(metadata: metadata, logger: logger), partitionTable: partitionTable, peers: assembly?.peers,
            maps: maps, counters: counters, mapReads: assembly?.mapReads, locks: locks)
        await assembly?.attach(components, persistTimeout: configuration.persistTimeout)
        var loaded = 0
        let measureStoredBytes: @Sendable () async throws -> [TenantID: Int64]
        let membership = assembly?.membership
        switch storage {
        case .persistent(let storage):
            if assembly != nil {
                // Partitions are loaded as the published table gives them to this node.
                for partition in 0..<PartitionFunction.partitionCount { components.maps.unloaded.insert(partition) }
            } else {
                // Rows of tenants deleted in metadata are left out and purged (TenantPurge.swift).
                loaded = try await components.partitions.loadAll(from: storage, checkingTenantsIn: metadata, purge: components.tenantPurge, logger: logger)
                logger.info("partitions loaded", metadata: ["records": "\(loaded)", "partitions": "\(PartitionFunction.partitionCount)"])
            }
            measureStoredBytes = { try await storage.storedBytes() }
        case .memoryOnly:
            measureStoredBytes = { [maps = components.maps] in await maps.storedBytes() }
        }
        let purger = TenantPurger(purge: components.tenantPurge, logger: logger)
        var storageProbe: StorageProbe?
        if case .persistent(let storage) = storage {
            storageProbe = StorageProbe(storage: storage, deadline: configuration.readinessDeadline, logger: logger)
        }
        var serving: (@Sendable () async -> Bool)?
        var clusterStatus: (@Sendable () async -> ClusterStatus)?
        if let membership {
            serving = { await membership.ownership.isServing }
            clusterStatus = { await membership.status() }
        }
        var cutOff: (@Sendable () -> String?)?
        if let quorum = assembly?.quorum {
            cutOff = {
                guard !quorum.isHeld else { return nil }
                let reach = quorum.reach
                return "this node reaches \(reach.reachable) of the cluster's \(reach.members) nodes, not a majority"
            }
        }
        let readiness = Readiness(storageProbe: storageProbe, serving: serving, cutOff: cutOff)
        readiness.markLoaded()
        let host = configuration.advertiseHost ?? configuration.host
        let capacity = ClientConnectionLimit.capacity(configured: configuration.maxConnections, metrics: components.metrics, logger: logger)
        let application = DataPlaneServer(
            configuration: configuration, durability: durability, metrics: components.metrics, logger: logger, connection: components.clientConnection,
            sync: components.httpSync, readiness: readiness, cluster: clusterStatus, capacity: capacity
        ).application { [membership] port in
            let bound = Bound(
                port: port, webSocketURL: "ws://\(host):\(port)/ws", httpURL: "http://\(host):\(port)", maxConnections: capacity.limit)
            endpoints.set(websocket: bound.webSocketURL, http: bound.httpURL)
            // A node of a cluster says it is up once it serves its share of the partitions.
            await membership?.waitUntilServing()
            await onBound(bound)
        }
        // Shut down in reverse order: the server first, the write-behind queue last (it drains).
        typealias Entry = ServiceGroupConfiguration.ServiceConfiguration
        var entries: [Entry] = []
        if let writeBehind { entries.append(Entry(service: writeBehind)) }
        // Stop after everything that forwards, replicates or hands over.
        for service in assembly?.services ?? [] { entries.append(Entry(service: service)) }
        entries.append(Entry(service: purger))
        if let storageProbe { entries.append(Entry(service: storageProbe)) }
        entries.append(Entry(service: LockExpiryService(locks: components.locks)))
        entries.append(Entry(service: StorageMeterService(
            measure: measureStoredBytes, policies: components.policies, usage: components.usage,
            interval: configuration.storageMeterInterval, logger: logger)))
        entries.append(Entry(
            service: MetadataFollower(
                metadata: metadata, authenticator: authenticator,
                control: metadata.map { SessionControl(metadata: $0, sessions: components.sessions, logger: logger, purger: purger) },
                policies: components.policies,
                logger: logger),
            successTerminationBehavior: .ignore))
        if let metadata {
            entries.append(Entry(service: UsageFlushService(
                meter: components.usage, metadata: metadata, nodeId: configuration.nodeId, logger: logger,
                beforeDrain: { [sessions = components.sessions] in sessions.meterBytesSent() })))
        }
        entries += alongside.map { Entry(service: $0) }
        entries.append(Entry(service: application))
        entries.append(Entry(service: SessionDrainService(
            sessions: components.sessions, wait: min(configuration.closeTimeout + .milliseconds(250), configuration.shutdownTimeout * 3 / 10),
            logger: logger)))
        // A node of a cluster hands its partitions over first, while it still serves (and
        // forwards), within its own budget on top of the stop's.
        var stopBudget = configuration.shutdownTimeout
        if let membership {
            entries.append(Entry(service: membership))
            stopBudget += membership.settings.leaveTimeout
        }
        // Signalled first (services stop in reverse order): from here the stop has its bound.
        entries.append(Entry(service: ShutdownWatchdog(timeout: stopBudget, logger: logger)))
        var groupConfiguration = ServiceGroupConfiguration(services: entries, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        // Services still stopping near the bound are cancelled (the write-behind queue then
        // keeps what it could not write: those writes were never acknowledged at PERSISTED).
        groupConfiguration.maximumGracefulShutdownDuration = stopBudget * 9 / 10
        try await ServiceGroup(configuration: groupConfiguration).run()
        if case .persistent(let storage) = storage {
            _ = try? await withStorageTimeout(.seconds(1)) { await storage.shutdown() }
        }
        if let cluster { _ = try? await withStorageTimeout(.seconds(1)) { await cluster.store.shutdown() } }
    }
}

/// Applies metadata changes (revoked keys, changed tenants) to what the node caches and to
/// the sessions they concern.
struct MetadataFollower: Service {
    let metadata: (any MetadataStore)?
    let authenticator: any Authenticator
    let control: SessionControl?
    let policies: TenantPolicies
    let logger: Logger

    func run() async throws {
        guard let metadata else { return try await gracefulShutdown() }
        let changes = metadata.changes()
        await cancelWhenGracefulShutdown {
            for await change in changes {
                logger.debug("metadata changed", metadata: ["change": "\(change)"])
                // Caches first, so a session closed here cannot come straight back with the same token.
                await authenticator.metadataChanged(change)
                policies.metadataChanged(change)
                await control?.apply(change)
            }
        }
    }
}

/// First to act on a graceful shutdown: closes every client socket with 1001 and a reason,
/// and gives the peers a moment to answer the close before the server stops (each socket
/// ends within the close timeout whether its peer answers or not).
struct SessionDrainService: Service {
    let sessions: SessionRegistry
    /// How long to wait for the sockets to end.
    let wait: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let closed = sessions.close(.goingAway, reason: "server shutting down")
        logger.info("closing client connections", metadata: ["count": "\(closed)"])
        let deadline = ContinuousClock.now + wait
        while sessions.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Expires lock leases.
struct LockExpiryService: Service {
    let locks: LockRegistry

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await locks.runExpiry()
        }
    }
}
