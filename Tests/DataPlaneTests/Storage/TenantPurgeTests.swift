@testable import DataPlane
import Logging
import Metadata
import Synchronization
import Tenancy
import Testing
import TopGunCore

extension StorageTests {
    /// Deleting a tenant purges its records from memory, the write-behind queue and storage,
    /// and nothing written before or after brings them back (issue 5, "live control").
    @Suite("Tenant purge")
    struct TenantPurgeTests {
        typealias Machine = WriteBehindStateMachine<ContinuousClock.Instant>
        let t0 = ContinuousClock.now
        let a = StorageFixtures.tenantA
        let b = StorageFixtures.tenantB

        func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0.advanced(by: .milliseconds(milliseconds)) }

        func machine() -> Machine {
            Machine(configuration: WriteBehindConfiguration(
                maxBatch: 100, flushInterval: .milliseconds(5), maxPending: 1_000, maxConcurrentFlushes: 1,
                initialBackoff: .milliseconds(10), maxBackoff: .seconds(1)))
        }

        func row(_ key: String, _ tenant: TenantID, _ version: Int64 = 1) -> StoredRecord {
            StorageFixtures.lww(key, .int(version), millis: version, tenant: tenant)
        }

        func ticket(_ action: Machine.EnqueueAction) -> FlushTicket {
            guard case .admitted(let ticket, _) = action else {
                Issue.record("enqueue was suspended")
                return FlushTicket(sequence: 0)
            }
            return ticket
        }

        func flight(_ machine: inout Machine, at now: ContinuousClock.Instant) -> (id: UInt64, rows: [StoredRecord])? {
            guard case .flush(let id, let rows) = machine.tick(now: now).1 else { return nil }
            return (id, rows)
        }

        // MARK: The state machine

        @Test func queuedRowsOfThePurgedTenantAreDroppedAndTheirTicketsSettle() {
            var m = machine()
            let first = ticket(m.enqueue([row("k", a)], id: 1, now: t0))
            _ = ticket(m.enqueue([row("k", b)], id: 2, now: at(1)))
            #expect(m.waitUntilDurable(first, id: 3, deadline: at(1_000), now: at(1)) == .suspend(wakeFlusher: true))
            let (resumptions, flights) = m.purgeTenant(a, now: at(2))
            #expect(flights.isEmpty)
            // Ticket 1 carried only rows of the purged tenant: nothing older is unwritten.
            #expect(resumptions.durable.map(\.0) == [3])
            #expect(m.status.pendingCount == 1)
            #expect(flight(&m, at: at(10))?.rows == [row("k", b)])
        }

        @Test func laterWritesOfAPurgedTenantAreNotQueued() {
            var m = machine()
            _ = m.purgeTenant(a, now: t0)
            let late = ticket(m.enqueue([row("k", a, 2), row("other", b)], id: 1, now: at(1)))
            #expect(m.status.pendingCount == 1)
            #expect(flight(&m, at: at(10))?.rows == [row("other", b)])
            _ = m.landOnly(now: at(11))
            #expect(m.status.durableThrough >= late.sequence)
        }

        @Test func aFailedFlightDoesNotRequeueThePurgedTenantsRows() {
            var m = machine()
            _ = ticket(m.enqueue([row("k", a), row("k", b)], id: 1, now: t0))
            let inFlight = flight(&m, at: at(10))
            #expect(inFlight?.rows.count == 2)
            let (_, flights) = m.purgeTenant(a, now: at(11))
            #expect(flights == [inFlight?.id].compactMap { $0 }, "the storage purge must wait for this flight")
            _ = m.failOnly("down", now: at(12))
            #expect(m.status.pendingCount == 1)
            #expect(flight(&m, at: at(100))?.rows == [row("k", b)])
        }

        @Test func aDrainEndsWhenTheOnlyRowsLeftInFlightWereDropped() {
            var m = machine()
            _ = ticket(m.enqueue([row("k", a)], id: 1, now: t0))
            _ = flight(&m, at: at(10))
            #expect(m.drain(id: 2, deadline: at(1_000), now: at(10)) == nil)
            _ = m.purgeTenant(a, now: at(11))
            let resumptions = m.failOnly("down", now: at(12))
            #expect(resumptions.drained.map(\.0) == [2])
            #expect(resumptions.drained.map(\.1) == [true])
        }

        // MARK: The queue

        @Test(.timeLimit(.minutes(1)))
        func thePurgeWaitsForAFlushCarryingTheTenantThenDeletesItsRows() async throws {
            let storage = FaultInjectingStorage()
            try await storage.store([row("stored", a), row("stored", b)])
            let queue = WriteBehindQueue(storage: storage, configuration: WriteBehindQueueTests.configuration(), logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }
            await storage.set(.pausing)
            _ = await queue.enqueue([row("k", a), row("k", b)])
            #expect(await eventually { await storage.storeCalls == 2 }, "a flush carrying both tenants is under way (after the setup's store)")
            let purged = Mutex(false)
            let purge = Task {
                try await queue.purgeTenant(a)
                purged.withLock { $0 = true }
            }
            try await Task.sleep(for: .milliseconds(100))
            #expect(!purged.withLock { $0 }, "the purge waits while the flush may still commit the tenant's rows")
            await storage.set(.healthy)  // the slow commit lands, with the row of `a`
            try await purge.value
            // A late write of the deleted tenant is not persisted.
            let late = await queue.enqueue([row("late", a)])
            #expect(await queue.waitUntilDurable(late, timeout: .seconds(60)))
            #expect(await queue.drain(timeout: .seconds(60)))
            let loaded = StorageFixtures.sorted(try await loadEverything(storage))
            #expect(loaded == StorageFixtures.sorted([row("stored", b), row("k", b)]))
        }

        // MARK: The node

        /// A node's services on `storage`, with a running write-behind queue and purger, and a
        /// metadata store holding tenants `a` and `b`.
        struct Node {
            let metadata: SQLiteMetadataStore
            let storage: any ServerStorage
            let queue: WriteBehindQueue
            let services: NodeComponents
            let purger: TenantPurger
            let a: TenantID
            let b: TenantID

            /// Runs `body` with a node, then closes its metadata store.
            static func with(storage: any ServerStorage, _ body: (Node) async throws -> Void) async throws {
                let node = try await make(storage: storage)
                do {
                    try await body(node)
                } catch {
                    await node.metadata.shutdown()
                    throw error
                }
                await node.metadata.shutdown()
            }

            static func make(storage: any ServerStorage) async throws -> Node {
                let metadata = try await SQLiteMetadataStore.open(.memory, masterKey: Array(repeating: 7, count: 32), logger: quietLogger)
                try await metadata.migrate()
                let a = try await metadata.createTenant(slug: "purge-a", displayName: "A", plan: "free").id
                let b = try await metadata.createTenant(slug: "purge-b", displayName: "B", plan: "free").id
                let queue = WriteBehindQueue(storage: storage, configuration: WriteBehindQueueTests.configuration(), logger: quietLogger)
                let services = NodeComponents(
                    configuration: DataPlaneConfiguration(nodeId: "purge-test"), durability: queue, authenticator: RefusingAuthenticator(),
                    logger: quietLogger)
                return Node(metadata: metadata, storage: storage, queue: queue, services: services,
                            purger: TenantPurger(purge: services.tenantPurge, logger: quietLogger), a: a, b: b)
            }

            /// The same map names and keys in both tenants: LWW, OR-Map and counter rows.
            var rows: [StoredRecord] {
                [a, b].flatMap { tenant in
                    [
                        StorageFixtures.lww("shared", .string("\(tenant.rawValue)'s"), map: "todos", tenant: tenant),
                        StorageFixtures.record(StorageFixtures.key("tags", map: "labels", tenant: tenant),
                                               .orMap(ORMapEntry(key: "tags", records: [], tombstones: ["1:0:x"]))),
                        StorageFixtures.record(StorageFixtures.key("likes", map: CounterRegistry.storageMapName, tenant: tenant),
                                               .counter(PNCounter(positive: ["n": 1]))),
                    ]
                }
            }
        }

        @Test(arguments: StorageBackend.all)
        func deletingATenantPurgesItsMemoryAndStorageAndLeavesTheOtherTenant(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in try await Node.with(storage: storage) { node in
                try await storage.store(node.rows)
                #expect(try await node.services.partitions.loadAll(from: storage, checkingTenantsIn: node.metadata, purge: node.services.tenantPurge, logger: quietLogger) == 6)
                var drafts = JournalDrafts()
                drafts.append(type: .put, key: "shared", value: .decoded(.int(1)), previousValue: nil, timestamp: StorageFixtures.timestamp(1))
                node.services.journal.append(drafts, mapName: "todos", tenant: node.a)
                let runner = Task { await node.queue.run() }
                let purging = Task { try await node.purger.run() }
                defer {
                    runner.cancel()
                    purging.cancel()
                }
                let control = SessionControl(metadata: node.metadata, sessions: node.services.sessions, logger: quietLogger, purger: node.purger)

                _ = try await node.metadata.setTenantStatus(node.a, .deleted)
                await control.apply(.tenant(node.a))
                #expect(await eventually(timeout: .seconds(30)) { node.purger.hasPurged(node.a) })

                let loaded = StorageFixtures.sorted(try await loadEverything(storage))
                #expect(loaded == StorageFixtures.sorted(node.rows.filter { $0.key.tenant == node.b }))
                #expect(node.services.maps.existingStore(tenant: node.a, name: "todos") == nil)
                #expect(node.services.maps.existingStore(tenant: node.a, name: "labels") == nil)
                #expect(node.services.maps.tenants == [node.b])
                #expect(await node.services.maps.existingStore(tenant: node.b, name: "todos")?.recordCount == 1)
                #expect(node.services.journal.read(tenant: node.a, fromSequence: 0, limit: 10, mapName: nil).events.isEmpty)
                // A late writer of the deleted tenant gets a store nobody else sees.
                _ = node.services.maps.store(tenant: node.a, name: "todos")
                #expect(node.services.maps.existingStore(tenant: node.a, name: "todos") == nil)

                // Idempotent: asking again (another change, a resynchronization) is harmless.
                try await node.services.tenantPurge.purge(node.a)
                await control.apply(.resynchronize)
                #expect(StorageFixtures.sorted(try await loadEverything(storage)) == loaded)
            } }
        }

        @Test(arguments: StorageBackend.all)
        func loadingLeavesOutAndPurgesTheRowsOfADeletedTenant(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in try await Node.with(storage: storage) { node in
                // Rows of a tenant deleted while the node was down (or whose purge was cut short).
                try await storage.store(node.rows)
                _ = try await node.metadata.setTenantStatus(node.a, .deleted)
                #expect(try await node.services.partitions.loadAll(from: storage, checkingTenantsIn: node.metadata, purge: node.services.tenantPurge, logger: quietLogger) == 3)
                #expect(node.services.maps.tenants == [node.b])
                let loaded = StorageFixtures.sorted(try await loadEverything(storage))
                #expect(loaded == StorageFixtures.sorted(node.rows.filter { $0.key.tenant == node.b }))
            } }
        }

        @Test func suspendingATenantPurgesNothing() async throws {
            let storage = MemoryServerStorage()
            try await Node.with(storage: storage) { node in
                try await storage.store(node.rows)
                _ = try await node.services.partitions.loadAll(from: storage, checkingTenantsIn: node.metadata, purge: node.services.tenantPurge, logger: quietLogger)
                let control = SessionControl(metadata: node.metadata, sessions: node.services.sessions, logger: quietLogger, purger: node.purger)
                _ = try await node.metadata.setTenantStatus(node.a, .suspended)
                await control.apply(.tenant(node.a))
                let purging = Task { try await node.purger.run() }
                defer { purging.cancel() }
                try await Task.sleep(for: .milliseconds(100))
                #expect(!node.purger.hasPurged(node.a))
                #expect(await storage.count == 6)
                #expect(node.services.maps.tenants == [node.a, node.b])
            }
        }
    }
}

/// Refuses every token (the purge tests open no session).
struct RefusingAuthenticator: Authenticator {
    func authenticate(token: String, requestId: String) async -> Result<RequestContext, RefusedToken> {
        .failure(RefusedToken(reason: "no sessions in this test"))
    }
}

extension LockTableTests {
    @Test func removingATenantDropsOnlyItsLocks() {
        var table = LockTable()
        let owner = LockTable.Owner(session: SessionID(rawValue: 1), requestId: "r")
        let mine = LockTable.LockName(tenant: TenantID("tenant-a"), name: "job")
        let theirs = LockTable.LockName(tenant: TenantID("tenant-b"), name: "job")
        _ = table.request(mine, owner: owner, ttlMillis: 10_000, nowMillis: 0)
        _ = table.request(theirs, owner: owner, ttlMillis: 10_000, nowMillis: 0)
        table.removeTenant(TenantID("tenant-a"))
        #expect(table.fencingToken(of: mine, nowMillis: 1) == nil)
        #expect(table.fencingToken(of: theirs, nowMillis: 1) == 1)
    }
}
