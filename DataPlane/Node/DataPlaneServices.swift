import Logging
import Metadata
import Tenancy
import TopGunCore
import TopGunWire

/// Everything a node's handlers share: maps, coordination services, durability, clock.
public final class DataPlaneServices: Sendable {
    public let configuration: DataPlaneConfiguration
    /// The node's own clock: wall time (`nowMillis`) for what belongs to no tenant.
    public let clock: NodeClock
    /// Each tenant's hybrid logical clock: timestamps a tenant sees come from its own.
    public var clocks: TenantClocks { maps.clocks }
    public let maps: MapDirectory
    public let topics = TopicRegistry()
    public let locks = LockManager()
    public let counters = CounterRegistry()
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

    public init(
        configuration: DataPlaneConfiguration, durability: any DurabilityPipeline, authenticator: any Authenticator,
        metrics: DataPlaneMetrics = DataPlaneMetrics(), logger: Logger, endpoints: AdvertisedEndpoints = AdvertisedEndpoints(),
        policies: TenantPolicies? = nil, usage: UsageMeter = UsageMeter(), partitionTable: CurrentPartitionTable? = nil,
        peers: (any PartitionPeers)? = nil
    ) {
        self.partitionTable = partitionTable ?? CurrentPartitionTable(localNode: NodeID(configuration.nodeId))
        self.peers = peers
        self.mapKinds = MapKindRecorder(metadata: policies?.metadataStore, logger: logger)
        self.policies = policies ?? TenantPolicies(metadata: nil, logger: logger)
        self.usage = usage
        self.sessions = SessionRegistry(usage: usage)
        self.configuration = configuration
        self.clock = NodeClock(nodeId: configuration.nodeId)
        self.maps = MapDirectory(clocks: TenantClocks(nodeId: configuration.nodeId))
        self.journal = EventJournal(nodeId: configuration.nodeId, capacity: configuration.journalCapacity)
        self.durability = durability
        self.authenticator = authenticator
        self.metrics = metrics
        self.logger = logger
        self.endpoints = endpoints
    }

    /// The partitions this node holds: loaded, streamed and dropped one at a time.
    public var partitions: LocalPartitions { LocalPartitions(maps: maps, counters: counters) }

    /// Forgets a session everywhere it left state.
    public func sessionClosed(_ session: SessionID, maps touched: [MapStore]) async {
        for store in touched { await store.removeSession(session) }
        await sessionEnding(session)
    }

    /// Releases what a closing session holds outside its maps (locks, topic and journal
    /// subscriptions, counter watches, subscription quota). Safe to call more than once: a
    /// session starting to close calls it at once, and again when its socket is gone.
    public func sessionEnding(_ session: SessionID) async {
        await topics.removeSession(session)
        await locks.removeSession(session)
        await counters.removeSession(session)
        journal.removeSession(session)
        policies.releaseSubscriptions(session: session)
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
