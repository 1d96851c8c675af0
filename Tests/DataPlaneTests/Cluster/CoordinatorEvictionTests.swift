@testable import DataPlane
import Logging
import Metadata
import PostgresNIO
import Testing

/// The coordinator lock of a node cut off from PostgreSQL by the network stays held by its
/// session until TCP gives up; another node ends that session once the node's lease expired,
/// and only then (`PostgresClusterStore.evictStaleCoordinator`).
@Suite("Coordinator eviction", .serialized, .enabled(if: PostgresTestEnvironment.isIncluded))
struct CoordinatorEvictionTests {
    static let logger = PostgresTestDatabase.testLogger

    /// A session holding the coordinator lock, named as node `node`'s coordinator would be.
    static func lockHolder(_ database: PostgresTestDatabase, node: String) async throws -> PostgresConnection {
        let configuration = try database.url.connectionConfiguration(applicationName: "topgun-coordinator-\(node)")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 7, logger: logger)
        var locked = false
        for try await value in try await connection.query(
            "SELECT pg_try_advisory_lock(\(PostgresClusterStore.coordinatorLockKey))", logger: logger
        ).decode(Bool.self) { locked = value }
        #expect(locked)
        return connection
    }

    static func sessions(named name: String, in database: PostgresTestDatabase) async throws -> Int {
        let connection = try await PostgresConnection.connect(configuration: try database.url.connectionConfiguration(), id: 8, logger: logger)
        var count = 0
        for try await value in try await connection.query(
            "SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = \(name)", logger: logger
        ).decode(Int64.self) { count = Int(value) }
        try await connection.close()
        return count
    }

    static func coordinated(_ store: PostgresClusterStore) async throws -> Bool {
        try await store.coordinate(as: NodeID("n1")) { _ in }
    }

    @Test func aCoordinatorWithoutALiveLeaseLosesItsSession() async throws {
        let database = try await PostgresTestDatabase.create()
        let storage = PostgresServerStorage(endpoint: database.url, logger: Self.logger)
        try await storage.prepare()
        let store = PostgresClusterStore(endpoint: database.url, logger: Self.logger)
        let ghost = try await Self.lockHolder(database, node: "ghost")
        // The first attempt finds the lock taken, and ends the ghost's session.
        #expect(try await Self.coordinated(store) == false)
        var gotIt = false
        for _ in 0..<50 where !gotIt {
            gotIt = try await Self.coordinated(store)
            if !gotIt { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(gotIt)
        // The ghost's session is gone (its connection object is left alone: its server ended it).
        #expect(try await Self.sessions(named: "topgun-coordinator-ghost", in: database) == 0)
        _ = ghost
        await store.shutdown()
        await storage.shutdown()
        await database.drop()
    }

    @Test func aCoordinatorWithALiveLeaseKeepsItsSession() async throws {
        let database = try await PostgresTestDatabase.create()
        let storage = PostgresServerStorage(endpoint: database.url, logger: Self.logger)
        try await storage.prepare()
        let store = PostgresClusterStore(endpoint: database.url, logger: Self.logger)
        try await store.acquire(
            ClusterLease(node: NodeID("alive"), incarnation: "run-1", clusterEndpoint: "127.0.0.1:1", protocolVersion: 1), duration: .seconds(60))
        let holder = try await Self.lockHolder(database, node: "alive")
        for _ in 0..<3 {
            #expect(try await Self.coordinated(store) == false)
        }
        // Still connected, still holding the lock.
        #expect(try await Self.sessions(named: "topgun-coordinator-alive", in: database) == 1)
        _ = try await holder.query("SELECT 1", logger: Self.logger).collect()
        try await holder.close()
        #expect(try await Self.coordinated(store))
        await store.shutdown()
        await storage.shutdown()
        await database.drop()
    }
}
