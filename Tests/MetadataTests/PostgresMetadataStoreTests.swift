import Foundation
import Logging
@testable import Metadata
import Migrations
import PostgresNIO
import Tenancy
import Testing

@Suite("PostgreSQL start-up errors")
struct PostgresStartupTests {
    @Test func unreachableServerFailsFastWithAClearError() async throws {
        let started = ContinuousClock.now
        do {
            _ = try await PostgresMetadataStore.connect(
                endpoint: PostgresEndpoint(host: "127.0.0.1", port: 1, username: "topgun", database: "topgun", tls: .disable),
                masterKey: TestMasterKey.bytes, connectTimeout: .seconds(2))
            Issue.record("connected to a closed port")
        } catch let error as MetadataError {
            guard case .unavailable(let message) = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(message.contains("127.0.0.1:1"))
        }
        // Under the pool's one-minute circuit breaker (the failure is the connect's, not the
        // breaker's), with room for a test run that keeps every core busy.
        #expect(ContinuousClock.now - started < .seconds(50))
    }

    @Test func silentServerFailsWithinTheConnectTimeout() async throws {
        // A listening socket that never answers the PostgreSQL handshake.
        let server = try await SilentTCPServer.start()
        defer { server.stop() }
        let started = ContinuousClock.now
        await #expect(throws: MetadataError.self) {
            _ = try await PostgresMetadataStore.connect(
                endpoint: PostgresEndpoint(host: "127.0.0.1", port: server.port, username: "topgun", database: "topgun", tls: .disable),
                masterKey: TestMasterKey.bytes, connectTimeout: .seconds(1))
        }
        // Under the pool's one-minute circuit breaker (the failure is the connect's, not the
        // breaker's), with room for a test run that keeps every core busy.
        #expect(ContinuousClock.now - started < .seconds(50))
    }

    @Test func badMasterKeyIsRefusedBeforeConnecting() async throws {
        do {
            _ = try await PostgresMetadataStore.connect(
                endpoint: PostgresEndpoint(host: "127.0.0.1", port: 1, username: "u", database: "d"), masterKey: [1, 2, 3])
            Issue.record("accepted a 3-byte master key")
        } catch let error as MetadataError {
            #expect(error == .invalid("the metadata master key must be 32 bytes (got 3)"))
        }
    }
}

@Suite("PostgreSQL metadata store specifics", .enabled(if: PostgresTestEnvironment.shouldRun, "set TOPGUN_TEST_POSTGRES_URL (ops/postgres start)"))
struct PostgresSpecificTests {
    @Test func unknownDatabaseFailsFastNamingIt() async throws {
        let endpoint = try PostgresTestEnvironment.endpoint().with(database: "tg_no_such_database")
        let started = ContinuousClock.now
        do {
            _ = try await PostgresMetadataStore.connect(endpoint: endpoint, masterKey: TestMasterKey.bytes)
            Issue.record("connected to a database that does not exist")
        } catch let error as MetadataError {
            guard case .unavailable(let message) = error else { Issue.record("expected unavailable, got \(error)"); return }
            #expect(message.contains("tg_no_such_database"))
        }
        // Under the pool's one-minute circuit breaker (the failure is the connect's, not the
        // breaker's), with room for a test run that keeps every core busy.
        #expect(ContinuousClock.now - started < .seconds(50))
    }

    @Test func twoConcurrentMigrationsBothSucceed() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let first = try await harness.openStore()
            let second = try await harness.openStore()
            async let a: Void = first.migrate()
            async let b: Void = second.migrate()
            _ = try await (a, b)
            #expect(try await harness.appliedMigrationVersions() == MigrationCatalog.migrations(for: .postgres).map(\.version))
            _ = try await first.createTenant(slug: "after-race", displayName: "After", plan: "free")
        }
    }

    @Test func migrateCommandAppliesOnceThenNothing() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let endpoint = try #require(harness as? PostgresHarness).endpoint
            let logger = PostgresTestEnvironment.logger
            let first = try await PostgresMigrationRunner.migrate(endpoint: endpoint, logger: logger)
            #expect(first.map(\.version) == MigrationCatalog.migrations(for: .postgres).map(\.version))
            #expect(try await PostgresMigrationRunner.migrate(endpoint: endpoint, logger: logger).isEmpty)
        }
    }

    @Test func failedMigrationRollsBackWhole() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let postgres = try #require(harness as? PostgresHarness)
            let store = try #require(try await postgres.migratedStore() as? PostgresMetadataStore)
            let broken = Migration(version: 99, name: "broken", sql: "CREATE TABLE half_done (x int);\nSELEC oops;", fileName: "0099_broken.postgres.sql")
            let runner = PostgresMigrationRunner(client: store.client, logger: PostgresTestEnvironment.logger, migrations: [broken])
            do {
                try await runner.run()
                Issue.record("a broken migration succeeded")
            } catch let error as MigrationError {
                #expect(error.version == 99)
                #expect(error.message.contains("syntax error"))
            }
            let exists = try await postgres.withConnection { connection in
                try await connection.query("SELECT to_regclass('half_done') IS NOT NULL", logger: PostgresTestEnvironment.logger).collect().first?.decode(Bool.self)
            }
            #expect(exists == false)
            #expect(try await runner.appliedVersions() == MigrationCatalog.migrations(for: .postgres).map(\.version))
        }
    }

    @Test func notificationPayloadIsTheDocumentedJSON() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let postgres = try #require(harness as? PostgresHarness)
            let store = try await postgres.migratedStore()
            let (payloads, tenant, key) = try await withDeadline(.seconds(5)) {
                try await postgres.withConnection { connection in
                    try await connection.listen(on: PostgresMetadataStore.notificationChannel) { notifications in
                        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
                        let key = try await store.createSigningKey(tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
                        var payloads: [String] = []
                        for try await notification in notifications {
                            payloads.append(notification.payload)
                            if payloads.count == 2 { break }
                        }
                        return (payloads, tenant, key)
                    }
                }
            }
            #expect(payloads == [
                #"{"kind":"tenant","tenant":"\#(tenant.id)"}"#,
                #"{"kid":"\#(key.kid)","kind":"signing_key","tenant":"\#(tenant.id)"}"#,
            ])
        }
    }

    @Test func rolledBackChangeIsNotAnnounced() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let store = try await harness.migratedStore()
            let recorder = ChangeRecorder(store.changes())
            _ = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
            await #expect(throws: MetadataError.self) { _ = try await store.createTenant(slug: "acme", displayName: "Again", plan: "pro") }
            let marker = try await store.createTenant(slug: "marker", displayName: "Marker", plan: "pro")
            let arrived = await recorder.wait { $0.contains(.tenant(marker.id)) }
            #expect(arrived.count == 2)
        }
    }

    @Test func operationsFailWithinTheirTimeoutWhenTheDatabaseIsGone() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let postgres = try #require(harness as? PostgresHarness)
            // Set up with the usual timeout: on a machine whose cores the rest of the suite keeps
            // busy, a migration may take longer than the one second under test.
            let setup = try await harness.controlPlaneStore()
            let tenant = try await setup.createTenant(slug: "acme", displayName: "Acme", plan: "pro")
            await setup.shutdown()
            let store = try await PostgresMetadataStore.connect(
                endpoint: postgres.endpoint, masterKey: TestMasterKey.bytes, logger: PostgresTestEnvironment.logger,
                operationTimeout: .seconds(1))
            // Its pool holds a connection to the database before it goes (one read, tried again
            // while a busy machine makes it miss its second).
            var connected = false
            for _ in 0..<10 where !connected { connected = (try? await store.tenant(id: tenant.id)) != nil }
            try #require(connected)
            await PostgresTestEnvironment.dropDatabase(postgres.endpoint.database)
            let started = ContinuousClock.now
            do {
                _ = try await store.tenant(id: tenant.id)
                _ = try await store.createTenant(slug: "later", displayName: "Later", plan: "pro")
                Issue.record("operations on a dropped database succeeded")
            } catch let error as MetadataError {
                guard case .unavailable = error else { Issue.record("expected unavailable, got \(error)"); return }
            }
            // Under the pool's one-minute circuit breaker (the failure is the connect's, not the
            // breaker's), with room for a test run that keeps every core busy.
            #expect(ContinuousClock.now - started < .seconds(50))
            await store.shutdown()
        }
    }

    @Test func lostListenConnectionReconnectsAndResynchronizes() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let postgres = try #require(harness as? PostgresHarness)
            let store = try await postgres.migratedStore()
            let recorder = ChangeRecorder(store.changes())
            let terminated = try await postgres.withConnection { connection in
                try await connection.query(
                    """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = \(PostgresChangeListener.applicationName) AND datname = current_database()
                    """, logger: PostgresTestEnvironment.logger
                ).collect().count
            }
            #expect(terminated == 1)
            let afterDrop = await recorder.wait(for: .seconds(5)) { $0.contains(.resynchronize) }
            #expect(afterDrop.contains(.resynchronize))
            // Listening again: a new change arrives.
            let tenant = try await store.createTenant(slug: "after-reconnect", displayName: "After", plan: "pro")
            #expect(await recorder.waitForAll([.tenant(tenant.id)]))
        }
    }
}

@Suite("PostgreSQL change listener", .enabled(if: PostgresTestEnvironment.shouldRun, "set TOPGUN_TEST_POSTGRES_URL (ops/postgres start)"))
struct PostgresChangeListenerTests {
    @Test func heartbeatsKeepTheListenConnectionAndNotificationsFlow() async throws {
        try await StoreKind.postgres.withHarness { harness in
            let postgres = try #require(harness as? PostgresHarness)
            let store = try await postgres.migratedStore()
            let broadcaster = MetadataChangeBroadcaster()
            let recorder = ChangeRecorder(broadcaster.subscribe(owner: ObjectIdentifier(broadcaster)))
            let listener = PostgresChangeListener(
                endpoint: postgres.endpoint, channel: PostgresMetadataStore.notificationChannel, broadcaster: broadcaster,
                logger: PostgresTestEnvironment.logger, connectTimeout: .seconds(2), heartbeat: .milliseconds(50))
            try await listener.start()
            try await Task.sleep(for: .milliseconds(400))  // several heartbeats
            let tenant = try await store.createTenant(slug: "beat", displayName: "Beat", plan: "free")
            #expect(await recorder.waitForAll([.tenant(tenant.id)]))
            #expect(!recorder.changes.contains(.resynchronize))
            await listener.stop()
        }
    }

    @Test func listenerStartFailsWhenTheServerIsUnreachable() async throws {
        let listener = PostgresChangeListener(
            endpoint: PostgresEndpoint(host: "127.0.0.1", port: 1, username: "u", database: "d", tls: .disable),
            channel: PostgresMetadataStore.notificationChannel, broadcaster: MetadataChangeBroadcaster(),
            logger: PostgresTestEnvironment.logger, connectTimeout: .seconds(1))
        await #expect(throws: MetadataError.self) { try await listener.start() }
    }
}

/// Accepts TCP connections and never says a word (a hung server, for timeout tests).
final class SilentTCPServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start() async throws -> SilentTCPServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 16)
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentTCPServer(channel: channel)
    }

    func stop() { channel.close(promise: nil) }
}

private struct Abandon: Error {}

@Suite("PostgreSQL control-plane store", .enabled(if: PostgresTestEnvironment.shouldRun, "set TOPGUN_TEST_POSTGRES_URL (ops/postgres start)"))
struct PostgresControlPlaneStoreTests {
    /// A migrated PostgreSQL store on a fresh database, and a second instance on the same one.
    private static func withStores(_ body: (PostgresMetadataStore, PostgresMetadataStore) async throws -> Void) async throws {
        try await StoreKind.postgres.withHarness { harness in
            let first = try #require(try await harness.migratedStore() as? PostgresMetadataStore)
            let second = try #require(try await harness.openStore() as? PostgresMetadataStore)
            try await body(first, second)
        }
    }

    private static func newTenant(_ slug: String, createdAt: Date = Date()) -> Tenant {
        Tenant(id: IDGenerator.tenantID(), slug: slug, displayName: slug, plan: "free", status: .active, createdAt: createdAt)
    }

    @Test func concurrentClaimsOfOneKeyHaveExactlyOneWinner() async throws {
        try await Self.withStores { first, second in
            let key = IdempotencyKey(scope: "adm_race", key: "k-1")
            let request = IdempotentRequest(method: "POST", path: "/v1/tenants", bodyHash: Array(repeating: 7, count: 32))
            let now = Date()
            let claims = try await withThrowingTaskGroup(of: IdempotencyClaim.self) { group in
                for index in 0..<16 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask { try await store.claimIdempotencyKey(key, for: request, now: now, staleAfter: 60) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(claims.filter { $0 == .claimed }.count == 1)
            #expect(claims.filter { $0 == .inProgress }.count == 15)
        }
    }

    @Test func concurrentWritesLockingATenantLoseNoUpdate() async throws {
        try await Self.withStores { first, second in
            let tenant = try await first.createTenant(slug: "locked", displayName: "Locked", plan: "pro")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask {
                        try await store.write { tx in
                            _ = try await tx.lockTenant(tenant.id)
                            let stored = try #require(try await tx.quotas(tenant: tenant.id))
                            try await Task.sleep(for: .milliseconds(5))  // widen the window a lost update needs
                            try await tx.saveQuotas(StoredQuotas(tenant: tenant.id, custom: nil, version: stored.version + 1, updatedAt: Date()))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await first.quotas(tenant: tenant.id)?.version == 9)
        }
    }

    @Test func publishedChangeReachesAnotherInstanceOnlyOnCommit() async throws {
        try await Self.withStores { first, second in
            let tenant = try await first.createTenant(slug: "notify", displayName: "Notify", plan: "pro")
            let recorder = ChangeRecorder(second.changes())
            await #expect(throws: Abandon.self) {
                try await first.write { tx in
                    try await tx.publish(.quota(tenant.id))
                    throw Abandon()
                }
            }
            try await first.write { tx in try await tx.publish(.schema(tenant: tenant.id, map: "orders")) }
            #expect(await recorder.waitForAll([.schema(tenant: tenant.id, map: "orders")]))
            #expect(!recorder.changes.contains(.quota(tenant.id)))
        }
    }

    @Test func slugConflictKeepsTheTransactionUsable() async throws {
        try await Self.withStores { store, _ in
            let taken = try await store.createTenant(slug: "taken", displayName: "Taken", plan: "free")
            let other = Self.newTenant("other")
            let outcome = try await store.write { tx -> MetadataError? in
                var conflict: MetadataError?
                do {
                    try await tx.insertTenant(Self.newTenant(taken.slug))
                } catch let error as MetadataError {
                    conflict = error
                }
                try await tx.insertTenant(other)
                return conflict
            }
            #expect(outcome == .conflict("slug 'taken' is taken"))
            #expect(try await store.tenant(id: other.id)?.slug == "other")
        }
    }

    @Test func pagesOfTimesWithSubMicrosecondPartsNeitherRepeatNorSkip() async throws {
        try await Self.withStores { store, _ in
            // Times with a fraction below a microsecond, several equal once stored.
            let base = Date(timeIntervalSince1970: 1_750_000_000.123_456_789)
            let times = (0..<9).map { base.addingTimeInterval(Double($0 / 3) * 0.000_000_7) }
            try await store.write { tx in
                for (index, time) in times.enumerated() {
                    try await tx.insertTenant(Self.newTenant("paged-\(index)", createdAt: time))
                }
            }
            var seen: [String] = []
            var position: ListPosition?
            repeat {
                let page = try await store.tenants(statuses: Set(Tenant.Status.allCases), plan: nil, after: position, limit: 2)
                seen += page.items.map(\.slug)
                position = page.next
            } while position != nil
            #expect(seen.count == 9)
            #expect(Set(seen).count == 9)
        }
    }

    @Test func concurrentDeliveriesOfOneFlushCountOnce() async throws {
        try await Self.withStores { first, second in
            let tenant = try await first.createTenant(slug: "usage", displayName: "Usage", plan: "pro")
            let hour = Date(timeIntervalSince1970: 1_749_999_600)  // a whole UTC hour
            let flush = UsageFlush(id: "node-1:42", deltas: [
                UsageHour(tenant: tenant.id, periodStart: hour, operations: 5, bytesIn: 10, peakConnections: 3, storageBytes: 100),
                UsageHour(tenant: tenant.id, periodStart: hour, operations: 2, bytesOut: 4, peakConnections: 2, storageBytes: 90),
            ])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<6 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask { try await store.recordUsage(flush) }
                }
                try await group.waitForAll()
            }
            let hours = try await first.usageHours(tenant: tenant.id, from: hour, to: hour.addingTimeInterval(3600))
            #expect(hours == [UsageHour(
                tenant: tenant.id, periodStart: hour, operations: 7, bytesIn: 10, bytesOut: 4, peakConnections: 3, storageBytes: 90)])
        }
    }
}
