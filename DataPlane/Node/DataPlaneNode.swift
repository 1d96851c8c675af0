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
    public let logger: Logger

    public init(
        configuration: DataPlaneConfiguration, storage: RecordStorage, authenticator: any Authenticator,
        metadata: (any MetadataStore)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.storage = storage
        self.authenticator = authenticator
        self.metadata = metadata
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
        let durability: any DurabilityPipeline
        switch storage {
        case .persistent(let storage):
            try await storage.prepare()
            // A graceful stop gives the drain most of its time (the sockets close first).
            writeBehind = WriteBehindQueue(
                storage: storage, configuration: WriteBehindConfiguration(drainTimeout: configuration.shutdownTimeout * 3 / 5), logger: logger)
            durability = writeBehind!
        case .memoryOnly:
            writeBehind = nil
            durability = MemoryOnlyDurability()
        }
        let endpoints = AdvertisedEndpoints()
        let components = NodeComponents(
            configuration: configuration, durability: durability, authenticator: authenticator, logger: logger, endpoints: endpoints,
            policies: TenantPolicies(metadata: metadata, logger: logger))
        var loaded = 0
        let measureStoredBytes: @Sendable () async throws -> [TenantID: Int64]
        switch storage {
        case .persistent(let storage):
            // Rows of tenants deleted in metadata are left out and purged (TenantPurge.swift).
            loaded = try await components.partitions.loadAll(from: storage, checkingTenantsIn: metadata, purge: components.tenantPurge, logger: logger)
            measureStoredBytes = { try await storage.storedBytes() }
        case .memoryOnly:
            measureStoredBytes = { [maps = components.maps] in await maps.storedBytes() }
        }
        let purger = TenantPurger(purge: components.tenantPurge, logger: logger)
        logger.info("partitions loaded", metadata: ["records": "\(loaded)", "partitions": "\(PartitionFunction.partitionCount)"])
        var storageProbe: StorageProbe?
        if case .persistent(let storage) = storage {
            storageProbe = StorageProbe(storage: storage, deadline: configuration.readinessDeadline, logger: logger)
        }
        let readiness = Readiness(storageProbe: storageProbe)
        readiness.markLoaded()
        let host = configuration.host
        let application = DataPlaneServer(
            configuration: configuration, durability: durability, metrics: components.metrics, logger: logger, connection: components.clientConnection,
            sync: components.httpSync, readiness: readiness
        ).application { port in
            let bound = Bound(port: port, webSocketURL: "ws://\(host):\(port)/ws", httpURL: "http://\(host):\(port)")
            endpoints.set(websocket: bound.webSocketURL, http: bound.httpURL)
            await onBound(bound)
        }
        // Shut down in reverse order: the server first, the write-behind queue last (it drains).
        typealias Entry = ServiceGroupConfiguration.ServiceConfiguration
        var entries: [Entry] = []
        if let writeBehind { entries.append(Entry(service: writeBehind)) }
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
        // Signalled first (services stop in reverse order): from here the stop has its bound.
        entries.append(Entry(service: ShutdownWatchdog(timeout: configuration.shutdownTimeout, logger: logger)))
        var groupConfiguration = ServiceGroupConfiguration(services: entries, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
        // Services still stopping near the bound are cancelled (the write-behind queue then
        // keeps what it could not write: those writes were never acknowledged at PERSISTED).
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout * 9 / 10
        try await ServiceGroup(configuration: groupConfiguration).run()
        if case .persistent(let storage) = storage {
            _ = try? await withStorageTimeout(.seconds(1)) { await storage.shutdown() }
        }
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
