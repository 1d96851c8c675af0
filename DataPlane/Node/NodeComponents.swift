import Logging
import Metadata
import Tenancy
import TopGunCore
import TopGunWire

/// The parts of one data-plane node, made once and wired together here: the only type that
/// holds every collaborator. Each handler, the connection, the HTTP endpoint and the
/// background services receive only the parts they use (the extension below builds them).
public final class NodeComponents: Sendable {
    public let configuration: DataPlaneConfiguration
    /// The node's own clock: wall time (`nowMillis`) for what belongs to no tenant.
    public let clock: NodeClock
    /// Each tenant's hybrid logical clock: timestamps a tenant sees come from its own.
    public var clocks: TenantClocks { maps.clocks }
    public let maps: MapDirectory
    public let topics = TopicRegistry()
    public let locks: LockRegistry
    public let counters: CounterRegistry
    public let journal: EventJournal
    public let sessions: SessionRegistry
    public let durability: any DurabilityPipeline
    public let authenticator: any Authenticator
    public let metrics: DataPlaneMetrics
    public let logger: Logger
    /// Where clients reach this node (for `PARTITION_MAP`); set once the server is bound.
    public let endpoints: AdvertisedEndpoints
    /// Each tenant's quotas and map schemas (no limits and no schemas without a metadata store).
    public let policies: TenantPolicies
    /// Each tenant's usage, counted for billing.
    public let usage: UsageMeter
    /// Fixes each map's CRDT once, in the metadata store.
    public let mapKinds: MapKindRecorder
    /// Who owns each partition: every routing decision reads it (`PartitionRouter`).
    public let partitionTable: CurrentPartitionTable
    /// Where requests for partitions owned elsewhere go; nil on a node on its own.
    public let peers: (any PartitionPeers)?
    /// Merkle sync of maps spread over several nodes; nil on a node on its own.
    public let mapReads: ClusterMapReads?
    /// Topics, counters and locks across nodes; set by the cluster's assembly, before the
    /// node serves (nil on a node on its own).
    let coordination = SynchronizedBox<ClusterCoordination?>(nil)

    public init(
        configuration: DataPlaneConfiguration, durability: any DurabilityPipeline, authenticator: any Authenticator,
        metrics: DataPlaneMetrics = DataPlaneMetrics(), logger: Logger, endpoints: AdvertisedEndpoints = AdvertisedEndpoints(),
        policies: TenantPolicies? = nil, usage: UsageMeter = UsageMeter(), partitionTable: CurrentPartitionTable? = nil,
        peers: (any PartitionPeers)? = nil, maps: MapDirectory? = nil, counters: CounterRegistry = CounterRegistry(),
        mapReads: ClusterMapReads? = nil, locks: LockRegistry = LockRegistry()
    ) {
        self.counters = counters
        self.locks = locks
        self.mapReads = mapReads
        self.partitionTable = partitionTable ?? CurrentPartitionTable(localNode: NodeID(configuration.nodeId))
        self.peers = peers
        self.mapKinds = MapKindRecorder(metadata: policies?.metadataStore, logger: logger)
        self.policies = policies ?? TenantPolicies(metadata: nil, logger: logger)
        self.usage = usage
        self.sessions = SessionRegistry(usage: usage)
        self.configuration = configuration
        self.clock = NodeClock(nodeId: configuration.nodeId)
        self.maps = maps ?? MapDirectory(clocks: TenantClocks(nodeId: configuration.nodeId))
        self.journal = EventJournal(nodeId: configuration.nodeId, capacity: configuration.journalCapacity)
        self.durability = durability
        self.authenticator = authenticator
        self.metrics = metrics
        self.logger = logger
        self.endpoints = endpoints
    }

    /// The partitions this node holds: loaded, streamed and dropped one at a time.
    public var partitions: LocalPartitions { LocalPartitions(maps: maps, counters: counters, locks: locks) }
}

extension NodeComponents {
    public var writePath: WritePath {
        var path = WritePath(
            maps: maps, mapKinds: mapKinds, policies: policies, durability: durability, journal: journal, partitionTable: partitionTable, peers: peers,
            clock: clock, maxClockDrift: configuration.maxClockDrift, usage: usage, metrics: metrics, logger: logger)
        path.ownWrites = coordination.get()?.liveQueries.ownWrites
        return path
    }

    /// The routing decision of every read and subscription.
    public var readRouting: ReadRouting { ReadRouting(table: partitionTable, unloaded: maps.unloaded) }

    /// Every domain's handler, each with its own collaborators.
    public var messageRouter: MessageRouter {
        MessageRouter(
            handlers: MessageRouter.Handlers(
                writes: WriteHandler(writes: writePath, persistTimeout: configuration.persistTimeout, metrics: metrics),
                lwwSync: LWWSyncHandler(maps: maps, clocks: clocks, routing: readRouting, metrics: metrics, spread: mapReads),
                orMapSync: orMapSyncHandler,
                queries: queryHandler,
                topics: topicHandler,
                locks: lockHandler,
                counters: counterHandler,
                journal: journalHandler,
                partitionMap: partitionMapHandler),
            metrics: metrics)
    }

    var orMapSyncHandler: ORMapSyncHandler {
        var handler = ORMapSyncHandler(
            maps: maps, mapKinds: mapKinds, clocks: clocks, clock: clock, maxClockDrift: configuration.maxClockDrift, policies: policies,
            partitionTable: partitionTable, routing: readRouting, peers: peers, journal: journal, durability: durability, metrics: metrics, logger: logger,
            spread: mapReads)
        handler.ownWrites = coordination.get()?.liveQueries.ownWrites
        return handler
    }

    var queryHandler: QueryHandler {
        var handler = QueryHandler(
            maps: maps, policies: policies, resultPageBytes: configuration.resultPageBytes, clock: clock, routing: readRouting, metrics: metrics)
        handler.cluster = coordination.get()
        handler.spread = mapReads
        return handler
    }

    var journalHandler: JournalHandler {
        var handler = JournalHandler(journal: journal, metrics: metrics)
        handler.cluster = coordination.get()
        return handler
    }

    var topicHandler: TopicHandler {
        var handler = TopicHandler(topics: topics, policies: policies, clock: clock, metrics: metrics)
        handler.cluster = coordination.get()
        return handler
    }

    var lockHandler: LockHandler {
        var handler = LockHandler(locks: locks, routing: readRouting, metrics: metrics)
        handler.cluster = coordination.get()
        return handler
    }

    var counterHandler: CounterHandler {
        var handler = CounterHandler(counters: counters, durability: durability, routing: readRouting, metrics: metrics)
        handler.cluster = coordination.get()
        return handler
    }

    public var partitionMapHandler: PartitionMapHandler {
        PartitionMapHandler(partitionTable: partitionTable, endpoints: endpoints, clock: clock)
    }

    public var sessionCleanup: SessionCleanup {
        var cleanup = SessionCleanup(topics: topics, locks: locks, counters: counters, journal: journal, policies: policies)
        cleanup.cluster = coordination.get()
        return cleanup
    }

    public var clientConnection: ClientConnection {
        ClientConnection(
            configuration: configuration, authenticator: authenticator, sessions: sessions, policies: policies, durability: durability, usage: usage,
            clock: clock, metrics: metrics, logger: logger, router: messageRouter, cleanup: sessionCleanup)
    }

    public var httpSync: HTTPSyncEndpoint {
        var endpoint = HTTPSyncEndpoint(
            configuration: configuration, authenticator: authenticator, policies: policies, writes: writePath, maps: maps, clocks: clocks, clock: clock,
            durability: durability, routing: readRouting, metrics: metrics, logger: logger)
        endpoint.spread = mapReads
        return endpoint
    }

    public var tenantPurge: TenantPurge {
        TenantPurge(maps: maps, counters: counters, journal: journal, topics: topics, locks: locks, durability: durability)
    }
}

/// The URLs of this node, known once its port is bound.
public final class AdvertisedEndpoints: Sendable {
    private let storage = SynchronizedBox<(websocket: String, http: String)?>(nil)

    public init() {}

    public func set(websocket: String, http: String) { storage.set((websocket, http)) }

    public var websocket: String { storage.get()?.websocket ?? "" }
    public var http: String { storage.get()?.http ?? "" }
}

import Synchronization

/// A value behind a mutex, for rarely changing shared settings.
final class SynchronizedBox<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func get() -> Value { mutex.withLock { $0 } }
    func set(_ value: Value) { mutex.withLock { $0 = value } }
}
