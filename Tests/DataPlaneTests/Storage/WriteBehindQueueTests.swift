@testable import DataPlane
import Logging
import ServiceLifecycle
import Testing
import TopGunCore

extension StorageTests {
    /// The write-behind actor with real storages and injected faults.
    @Suite("WriteBehindQueue")
    struct WriteBehindQueueTests {
        static func configuration(maxPending: Int = 100_000, storeTimeout: Duration = .seconds(30)) -> WriteBehindConfiguration {
            WriteBehindConfiguration(maxBatch: 500, flushInterval: .milliseconds(2), maxPending: maxPending,
                                     initialBackoff: .milliseconds(5), maxBackoff: .milliseconds(50), storeTimeout: storeTimeout)
        }

        /// Runs `body` with a queue whose `run()` is running, then stops it.
        func withRunningQueue(_ storage: any ServerStorage, _ configuration: WriteBehindConfiguration = configuration(),
                              _ body: (WriteBehindQueue) async throws -> Void) async throws {
            let queue = WriteBehindQueue(storage: storage, configuration: configuration, logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }
            try await body(queue)
        }

        @Test(arguments: StorageBackend.all)
        func persistedTicketsResolveAndTheRowsAreStored(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                try await withRunningQueue(storage) { queue in
                    var expected: [StoredRecord] = []
                    // Concurrent writers, each waiting for its own ticket as a PERSISTED ack would.
                    try await withThrowingTaskGroup(of: Bool.self) { group in
                        for writer in 0..<20 {
                            let records = StorageFixtures.many(50, prefix: "w\(writer)")
                            expected += records
                            group.addTask {
                                let ticket = await queue.enqueue(records)
                                return await queue.waitUntilDurable(ticket, timeout: .seconds(20))
                            }
                        }
                        for try await durable in group { #expect(durable) }
                    }
                    let loaded1 = try await loadEverything(storage)
                    #expect(StorageFixtures.sorted(loaded1) == StorageFixtures.sorted(expected))
                    let status = await queue.status
                    #expect(status.pendingCount == 0)
                    #expect(status.isHealthy)
                }
            }
        }

        @Test func coalescedWritesLandAsTheLatestState() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage) { queue in
                await storage.set(.failing)
                var last = FlushTicket(sequence: 0)
                for version in 1...50 {
                    last = await queue.enqueue([StorageFixtures.lww("hot", .int(Int64(version)), millis: Int64(version))])
                }
                #expect(await queue.status.pendingCount == 1)
                await storage.set(.healthy)
                #expect(await queue.waitUntilDurable(last, timeout: .seconds(60)))
                let loaded2 = try await loadEverything(storage)
                #expect(loaded2 == [StorageFixtures.lww("hot", .int(50), millis: 50)])
            }
        }

        @Test func whileTheStorageIsDownWritesAreKeptAndLandAfterRecovery() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage) { queue in
                await storage.set(.failing)
                let first = await queue.enqueue(StorageFixtures.many(100))
                // Not durable: the caller answers 503 and does not ack.
                #expect(await queue.waitUntilDurable(first, timeout: .milliseconds(100)) == false)
                #expect(await eventually { await !queue.status.isHealthy })
                var status = await queue.status
                #expect(status.lastError?.contains("database down") == true)
                #expect(status.pendingCount == 100)
                // The node keeps taking writes from memory meanwhile.
                let second = await queue.enqueue(StorageFixtures.many(100, version: 1) + StorageFixtures.many(10, prefix: "extra"))
                #expect(await eventually { await storage.storeCalls > 1 }, "retried")
                await storage.set(.healthy)
                #expect(await queue.waitUntilDurable(second, timeout: .seconds(60)))
                #expect(await queue.isDurable(first))
                status = await queue.status
                #expect(status.isHealthy)
                #expect(status.lastError == nil)
                let loaded3 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded3)
                        == StorageFixtures.sorted(StorageFixtures.many(100, version: 1) + StorageFixtures.many(10, prefix: "extra")))
            }
        }

        /// A real outage: the test database stops taking connections and its sessions are
        /// killed. Writes are kept, PERSISTED waits time out meanwhile, and everything lands
        /// once the database is back.
        @Test(.enabled(if: PostgresTestEnvironment.isIncluded), .timeLimit(.minutes(2)))
        func writesSurviveAPostgresOutage() async throws {
            try await StorageBackend.postgres.withStorage { storage, context in
                let database = try #require(context.postgres)
                let name = database.url.database
                try await withRunningQueue(storage, Self.configuration(storeTimeout: .seconds(2))) { queue in
                    let first: FlushTicket = await queue.enqueue(StorageFixtures.many(100))
                    #expect(await queue.waitUntilDurable(first, timeout: .seconds(10)))

                    try await database.execute("ALTER DATABASE \(name) WITH ALLOW_CONNECTIONS false")
                    try await database.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
                    let second: FlushTicket = await queue.enqueue(StorageFixtures.many(100, version: 1))
                    #expect(await queue.waitUntilDurable(second, timeout: .milliseconds(300)) == false)
                    #expect(await eventually { await !queue.status.isHealthy })
                    let third: FlushTicket = await queue.enqueue(StorageFixtures.many(10, prefix: "during"))

                    try await database.execute("ALTER DATABASE \(name) WITH ALLOW_CONNECTIONS true")
                    #expect(await queue.waitUntilDurable(third, timeout: .seconds(60)))
                    #expect(await queue.status.isHealthy)
                    let loaded = try await loadEverything(storage)
                    #expect(StorageFixtures.sorted(loaded)
                            == StorageFixtures.sorted(StorageFixtures.many(100, version: 1) + StorageFixtures.many(10, prefix: "during")))
                }
            }
        }

        @Test func aHungStoreTimesOutAndIsRetried() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage, Self.configuration(storeTimeout: .milliseconds(50))) { queue in
                await storage.set(.hanging)
                let ticket = await queue.enqueue(StorageFixtures.many(5))
                #expect(await queue.waitUntilDurable(ticket, timeout: .milliseconds(200)) == false)
                #expect(await eventually { await queue.status.lastError?.contains("no answer within") == true })
                await storage.set(.healthy)
                #expect(await queue.waitUntilDurable(ticket, timeout: .seconds(60)))
            }
        }

        @Test(.timeLimit(.minutes(1)))
        func aFullQueueMakesWritersWait() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage, Self.configuration(maxPending: 10)) { queue in
                await storage.set(.failing)
                _ = await queue.enqueue(StorageFixtures.many(10))
                let blocked = Task { await queue.enqueue(StorageFixtures.many(5, prefix: "late")) }
                #expect(await eventually { await queue.status.pendingCount == 15 })
                #expect(await queue.status.lastTicket == 1, "the second writer is still waiting for room")
                await storage.set(.healthy)
                let ticket = await blocked.value
                #expect(ticket.sequence == 2)
                #expect(await queue.waitUntilDurable(ticket, timeout: .seconds(60)))
                let loaded4 = try await loadEverything(storage)
                #expect(loaded4.count == 15)
            }
        }

        @Test func drainWithoutRunFlushesEverything() async throws {
            let storage = FaultInjectingStorage()
            let queue = WriteBehindQueue(storage: storage, configuration: Self.configuration(), logger: quietLogger)
            let ticket = await queue.enqueue(StorageFixtures.many(1_000))
            // Nothing flushes before run() or drain().
            try await Task.sleep(for: .milliseconds(20))
            #expect(await storage.storeCalls == 0)
            #expect(await queue.drain(timeout: .seconds(60)))
            #expect(await queue.isDurable(ticket))
            #expect(await storage.storedBatchSizes == [1_000], "one group commit")
        }

        @Test func drainGivesUpWhenTheStorageKeepsFailing() async throws {
            let storage = FaultInjectingStorage()
            await storage.set(.failing)
            let queue = WriteBehindQueue(storage: storage, configuration: Self.configuration(), logger: quietLogger)
            _ = await queue.enqueue(StorageFixtures.many(3))
            let started = ContinuousClock.now
            #expect(await queue.drain(timeout: .milliseconds(150)) == false)
            // Generous: parallel tests on two cores delay timers; hanging is what this catches.
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(await queue.status.pendingCount == 3)
        }

        @Test func aGracefulShutdownDrainsBeforeRunReturns() async throws {
            let storage = FaultInjectingStorage()
            let queue = WriteBehindQueue(
                storage: storage,
                configuration: WriteBehindConfiguration(flushInterval: .seconds(60), drainTimeout: .seconds(5)),
                logger: quietLogger)
            let group = ServiceGroup(services: [queue], gracefulShutdownSignals: [], logger: quietLogger)
            let running = Task { try await group.run() }
            let ticket = await queue.enqueue(StorageFixtures.many(20))
            // The interval is a minute: only the shutdown's drain can write this.
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(await queue.isDurable(ticket))
            let loaded5 = try await loadEverything(storage)
            #expect(loaded5.count == 20)
        }

        @Test func cancellingAWaiterAnswersFalse() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage) { queue in
                await storage.set(.failing)
                let ticket = await queue.enqueue(StorageFixtures.many(1))
                let waiter = Task { await queue.waitUntilDurable(ticket, timeout: .seconds(60)) }
                try await Task.sleep(for: .milliseconds(20))
                waiter.cancel()
                #expect(await waiter.value == false)
            }
        }

        @Test func invalidRecordsAreDroppedSoTheyCannotStallTheQueue() async throws {
            let storage = FaultInjectingStorage()
            try await withRunningQueue(storage) { queue in
                let ticket = await queue.enqueue([
                    StorageFixtures.lww("fine", .int(1)),
                    StoredRecord(key: StorageFixtures.key("bad"), partition: -1, value: .counter(PNCounter())),
                ])
                #expect(await queue.waitUntilDurable(ticket, timeout: .seconds(60)))
                let loaded6 = try await loadEverything(storage)
                #expect(loaded6 == [StorageFixtures.lww("fine", .int(1))])
            }
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes (for effects of background work
/// whose timing a loaded machine stretches).
func eventually(timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return await condition()
}
