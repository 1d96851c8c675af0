@testable import DataPlane
import Foundation
import Metadata
import Synchronization
import Testing
import TopGunCore

/// A fresh, migrated database for cluster tests, with the records storage on it and the
/// cluster stores a test opens (all closed, and the database dropped, at the end).
final class ClusterTestDatabase: Sendable {
    let database: PostgresTestDatabase
    let storage: PostgresServerStorage
    private let stores = Mutex<[PostgresClusterStore]>([])

    private init(database: PostgresTestDatabase, storage: PostgresServerStorage) {
        self.database = database
        self.storage = storage
    }

    /// Runs `body` with a database migrated by `PostgresServerStorage.prepare()`.
    static func with(_ body: (ClusterTestDatabase) async throws -> Void) async throws {
        let database = try await PostgresTestDatabase.create()
        let storage = PostgresServerStorage(
            endpoint: database.url, maximumConnections: 4, connectTimeout: .seconds(5), rowsPerStatement: 20_000, logger: quietLogger)
        let context = ClusterTestDatabase(database: database, storage: storage)
        do {
            try await storage.prepare()
            try await body(context)
        } catch {
            await context.close()
            throw error
        }
        await context.close()
    }

    /// Another node's view of the cluster store (its own connections).
    func store() -> PostgresClusterStore {
        let store = PostgresClusterStore(endpoint: database.url, connectTimeout: .seconds(5), logger: quietLogger)
        stores.withLock { $0.append(store) }
        return store
    }

    private func close() async {
        for store in stores.withLock({ $0 }) { await store.shutdown() }
        await storage.shutdown()
        await database.drop()
    }

    /// Publishes `table` as coordinator `node`, replacing `expected`.
    func publish(_ table: PartitionTable, replacing expected: Int64?, with store: PostgresClusterStore, as node: NodeID) async throws {
        let held = try await store.coordinate(as: node) { session in
            try await session.publish(table, replacing: expected, backupCount: 1, coordinator: node)
        }
        #expect(held, "the coordinator lock was free")
    }
}

/// The cluster's membership and table in a real PostgreSQL.
///
/// Serialized, with every other suite that coordinates nested in it: a store that finds the
/// coordinator lock taken ends the sessions of coordinators it judges stale, and it judges
/// those of other databases on the same server too (see
/// `aFailedLockAttemptLeavesOtherDatabasesCoordinatorsAlone`).
@Suite(.enabled(if: PostgresTestEnvironment.isIncluded), .timeLimit(.minutes(2)), .serialized)
struct PostgresClusterStoreTests {
    static let a = NodeID("a"), b = NodeID("b"), c = NodeID("c"), d = NodeID("d")

    static func lease(_ node: NodeID, run: String = "run-1", status: ClusterLease.Status = .active) -> ClusterLease {
        ClusterLease(
            node: node, incarnation: run, clusterEndpoint: "127.0.0.1:70\(node.rawValue.count)",
            websocketURL: "ws://\(node)-\(run).test/ws", httpURL: "http://\(node)-\(run).test", protocolVersion: 3, status: status)
    }

    /// Waits (generously) until the database's clock says `node`'s lease expired.
    static func waitUntilExpired(_ node: NodeID, in store: PostgresClusterStore) async -> Bool {
        await eventually(timeout: .seconds(60)) {
            guard let rows = try? await store.leases(), let row = rows.first(where: { $0.lease.node == node }) else { return false }
            return !row.isLive
        }
    }

    // MARK: Credentials

    @Test func credentialsAreCreatedOnceAndShared() async throws {
        try await ClusterTestDatabase.with { db in
            let one = db.store(), two = db.store()
            async let first = one.credentials()
            async let second = two.credentials()
            let (mine, theirs) = try await (first, second)
            #expect(mine == theirs, "two nodes starting at once agree")
            #expect(mine.secret.count >= 32)
            #expect(mine.clusterId.hasPrefix("cluster-"))
            #expect(try await one.credentials() == mine)
            #expect(try await db.store().credentials() == mine, "a later node reads the same")
        }
    }

    // MARK: Leases

    @Test func aLeaseIsAcquiredRenewedAndReleased() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            #expect(try await store.leases().isEmpty)
            let lease = Self.lease(Self.a)
            try await store.acquire(lease, duration: .seconds(60))
            var rows = try await store.leases()
            #expect(rows.map(\.lease) == [lease])
            #expect(rows.first?.isLive == true)
            // A renewal updates the endpoints and the status.
            var updated = lease
            updated.clusterEndpoint = "127.0.0.1:7999"
            updated.websocketURL = "ws://moved/ws"
            updated.httpURL = "http://moved"
            updated.status = .leaving
            #expect(try await store.renew(updated, duration: .seconds(60)))
            rows = try await store.leases()
            #expect(rows.map(\.lease) == [updated])
            #expect(rows.first?.isLive == true)
            try await store.release(updated)
            #expect(try await store.leases().isEmpty)
            #expect(try await store.renew(updated, duration: .seconds(60)) == false, "a released lease cannot be renewed")
        }
    }

    @Test func leasesAreListedByNodeWithTheirState() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            try await store.acquire(Self.lease(Self.c), duration: .seconds(60))
            try await store.acquire(Self.lease(Self.a), duration: .seconds(60))
            try await store.acquire(Self.lease(Self.b), duration: .milliseconds(300))
            #expect(await Self.waitUntilExpired(Self.b, in: store))
            let rows = try await store.leases()
            #expect(rows.map(\.lease.node) == [Self.a, Self.b, Self.c])
            #expect(rows.map(\.isLive) == [true, false, true])
            #expect(rows.map(\.lease) == [Self.lease(Self.a), Self.lease(Self.b), Self.lease(Self.c)])
        }
    }

    @Test func anotherRunOfALiveNodeIdIsRefused() async throws {
        try await ClusterTestDatabase.with { db in
            let mine = db.store(), theirs = db.store()
            try await mine.acquire(Self.lease(Self.a, run: "run-1"), duration: .seconds(60))
            await #expect(throws: ClusterMembershipError.nodeIdInUse(Self.a)) {
                try await theirs.acquire(Self.lease(Self.a, run: "run-2"), duration: .seconds(60))
            }
            // The same run acquiring again (a retry) is fine.
            try await mine.acquire(Self.lease(Self.a, run: "run-1"), duration: .seconds(60))
            // The other run can neither renew nor release it.
            #expect(try await theirs.renew(Self.lease(Self.a, run: "run-2"), duration: .seconds(60)) == false)
            try await theirs.release(Self.lease(Self.a, run: "run-2"))
            let rows = try await mine.leases()
            #expect(rows.map(\.lease) == [Self.lease(Self.a, run: "run-1")])
            #expect(rows.first?.isLive == true)
        }
    }

    @Test func anExpiredLeaseCannotBeRenewedAndAnotherRunTakesItOver() async throws {
        try await ClusterTestDatabase.with { db in
            let old = db.store(), new = db.store()
            try await old.acquire(Self.lease(Self.a, run: "run-1"), duration: .milliseconds(300))
            let before = try await old.leases().first?.startedAt
            #expect(await Self.waitUntilExpired(Self.a, in: old))
            #expect(try await old.renew(Self.lease(Self.a, run: "run-1"), duration: .seconds(60)) == false)
            try await new.acquire(Self.lease(Self.a, run: "run-2"), duration: .seconds(60))
            let rows = try await new.leases()
            #expect(rows.map(\.lease) == [Self.lease(Self.a, run: "run-2")])
            #expect(rows.first?.isLive == true)
            if let before, let after = rows.first?.startedAt { #expect(after >= before, "the new run started later") }
            // The old run is out for good.
            #expect(try await old.renew(Self.lease(Self.a, run: "run-1"), duration: .seconds(60)) == false)
            await #expect(throws: ClusterMembershipError.nodeIdInUse(Self.a)) {
                try await old.acquire(Self.lease(Self.a, run: "run-1"), duration: .seconds(60))
            }
        }
    }

    // MARK: The coordinator lock

    @Test func onlyOneStoreCoordinatesAtATime() async throws {
        try await ClusterTestDatabase.with { db in
            let one = db.store(), two = db.store()
            try await one.acquire(Self.lease(Self.a), duration: .seconds(120))
            try await two.acquire(Self.lease(Self.b), duration: .seconds(120))
            let inner = SharedTestValue<Bool?>(nil)
            let took = try await one.coordinate(as: Self.a) { session in
                let other = try await two.coordinate(as: Self.b) { _ in Issue.record("two coordinators at once") }
                inner.update { $0 = other }
                #expect(await session.stillHolds(), "a coordinator with a live lease keeps its lock")
            }
            #expect(took)
            #expect(inner.value == false, "the second store did not get the lock")
            // Released when the body ended.
            let ranAfter = SharedTestValue(false)
            let heldAfter = try await two.coordinate(as: Self.b) { _ in ranAfter.update { $0 = true } }
            #expect(heldAfter)
            #expect(ranAfter.value)
        }
    }

    @Test func twoConcurrentCoordinatorsGetOneLock() async throws {
        try await ClusterTestDatabase.with { db in
            let one = db.store(), two = db.store()
            try await one.acquire(Self.lease(Self.a), duration: .seconds(120))
            try await two.acquire(Self.lease(Self.b), duration: .seconds(120))
            let refusals = SharedTestValue(0)
            let bodies = SharedTestValue(0)
            // The winner holds the lock until the other has been refused (or long enough to fail).
            let body: @Sendable (any CoordinatorSession) async throws -> Void = { _ in
                bodies.update { $0 += 1 }
                _ = await eventually(timeout: .seconds(30)) { refusals.value >= 1 }
            }
            @Sendable func attempt(_ store: PostgresClusterStore, as node: NodeID) async throws -> Bool {
                let held = try await store.coordinate(as: node, body)
                if !held { refusals.update { $0 += 1 } }
                return held
            }
            async let first = attempt(one, as: Self.a)
            async let second = attempt(two, as: Self.b)
            let results = try await [first, second]
            #expect(results.filter { $0 }.count == 1, "exactly one got the lock: \(results)")
            #expect(bodies.value == 1)
            #expect(refusals.value == 1)
        }
    }

    @Test func theLockIsReleasedWhenTheBodyThrows() async throws {
        try await ClusterTestDatabase.with { db in
            let one = db.store(), two = db.store()
            struct Failure: Error {}
            await #expect(throws: Failure.self) {
                _ = try await one.coordinate(as: Self.a) { _ in throw Failure() }
            }
            let heldAfter = try await two.coordinate(as: Self.b) { _ in }
            #expect(heldAfter)
        }
    }

    /// A coordinator whose lease expired (a node cut off from the database keeps its session)
    /// loses its lock to the next node that tries.
    @Test func aCoordinatorWhoseLeaseExpiredIsEvicted() async throws {
        try await ClusterTestDatabase.with { db in
            let stale = db.store(), next = db.store()
            try await stale.acquire(Self.lease(Self.a), duration: .milliseconds(300))
            try await next.acquire(Self.lease(Self.b), duration: .seconds(120))
            let evicted = SharedTestValue(false)
            let staleTook = try await stale.coordinate(as: Self.a) { session in
                #expect(await Self.waitUntilExpired(Self.a, in: stale))
                // The next node finds the lock taken, and ends the stale coordinator's session.
                let first = try await next.coordinate(as: Self.b) { _ in }
                #expect(first == false)
                let ended = await eventually(timeout: .seconds(30)) { await !session.stillHolds() }
                evicted.update { $0 = ended }
            }
            #expect(staleTook)
            #expect(evicted.value, "the stale coordinator's session was ended")
            let took = try await next.coordinate(as: Self.b) { _ in }
            #expect(took)
        }
    }

    /// Clusters in two databases of one server each have their own coordinator: a node that
    /// finds its own cluster's lock taken must not end the other cluster's coordinator (whose
    /// node has no lease in this cluster's database).
    @Test func aFailedLockAttemptLeavesOtherDatabasesCoordinatorsAlone() async throws {
        try await ClusterTestDatabase.with { first in
            try await ClusterTestDatabase.with { second in
                let mine = first.store()
                try await mine.acquire(Self.lease(Self.a), duration: .seconds(120))
                let holder = second.store(), contender = second.store()
                try await holder.acquire(Self.lease(Self.c), duration: .seconds(120))
                try await contender.acquire(Self.lease(Self.d), duration: .seconds(120))
                let stillMine = SharedTestValue<Bool?>(nil)
                let took = try await mine.coordinate(as: Self.a) { mySession in
                    let held = try await holder.coordinate(as: Self.c) { holderSession in
                        // The second cluster's other node tries, and is refused.
                        let contended = try await contender.coordinate(as: Self.d) { _ in }
                        #expect(contended == false)
                        #expect(await holderSession.stillHolds(), "a coordinator with a live lease keeps its lock")
                    }
                    #expect(held)
                    stillMine.update { $0 = false }
                    let holds = await mySession.stillHolds()
                    stillMine.update { $0 = holds }
                }
                #expect(took)
                #expect(stillMine.value == true, "the first cluster's coordinator lost its session to the second cluster's node")
            }
        }
    }

    // MARK: The table

    /// A table with backups, epochs, migration targets, and a member without a lease row.
    static func table(version: Int64) -> PartitionTable {
        let members = [a, b, c, d].map { PartitionTable.Member(id: $0) }
        let assignments = (0..<PartitionFunction.partitionCount).map { partition -> PartitionTable.Assignment in
            let owner = [a, b, c, d][partition % 4]
            let backups: [NodeID] = partition % 5 == 0 ? [] : partition % 5 == 1 ? [[a, b, c, d][(partition + 1) % 4]]
                : [[a, b, c, d][(partition + 1) % 4], [a, b, c, d][(partition + 2) % 4]]
            let target = partition % 7 == 0 ? [a, b, c, d][(partition + 3) % 4] : nil
            return PartitionTable.Assignment(owner: owner, backups: backups, epoch: Int64(1 + partition % 6), migrationTarget: target)
        }
        return PartitionTable(version: version, members: members, assignments: assignments)!
    }

    /// `table` as `table()` reads it: each member with its lease's endpoints ("" without one).
    static func withEndpoints(_ table: PartitionTable, _ leases: [ClusterLease]) -> PartitionTable {
        let members = table.members.map { member in
            let lease = leases.first { $0.node == member.id }
            return PartitionTable.Member(id: member.id, websocketURL: lease?.websocketURL ?? "", httpURL: lease?.httpURL ?? "")
        }
        return PartitionTable(version: table.version, members: members, assignments: table.assignments)!
    }

    @Test func aPublishedTableIsReadBackWhole() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            #expect(try await store.table() == nil, "nothing published yet")
            let leases = [Self.lease(Self.a), Self.lease(Self.b), Self.lease(Self.c)]
            for lease in leases { try await store.acquire(lease, duration: .seconds(60)) }
            let first = Self.table(version: 1)
            try await db.publish(first, replacing: nil, with: store, as: Self.a)
            let read = try await db.store().table()
            #expect(read == Self.withEndpoints(first, leases))
            #expect(read?.members.last == PartitionTable.Member(id: Self.d), "d has no lease row: no endpoints")

            // A second table changing owners, epochs, backups and targets (set and cleared).
            var assignments = first.assignments
            assignments[0].migrationTarget = nil
            assignments[1].migrationTarget = Self.c
            assignments[2].owner = Self.b
            assignments[2].epoch += 1
            assignments[2].backups = [Self.a]
            assignments[3].backups = []
            assignments[6].backups = [Self.d, Self.a]
            let second = PartitionTable(version: 2, members: first.members.filter { $0.id != Self.d } + [PartitionTable.Member(id: Self.d)],
                                        assignments: assignments)!
            try await db.publish(second, replacing: 1, with: store, as: Self.a)
            #expect(try await store.table() == Self.withEndpoints(second, leases))
            // Endpoints follow the lease rows.
            var moved = leases[0]
            moved.websocketURL = "ws://elsewhere/ws"
            #expect(try await store.renew(moved, duration: .seconds(60)))
            #expect(try await store.table()?.members.first?.websocketURL == "ws://elsewhere/ws")
        }
    }

    @Test func publishingOverAnUnexpectedVersionIsRefused() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            let first = Self.table(version: 1)
            try await db.publish(first, replacing: nil, with: store, as: Self.a)
            let second = PartitionTable(version: 2, members: first.members, assignments: first.assignments.map {
                var assignment = $0
                assignment.epoch += 10
                return assignment
            })!
            // Another coordinator published meanwhile.
            _ = try await store.coordinate(as: Self.b) { session in
                await #expect(throws: ClusterMembershipError.tableChanged(expected: nil, found: 1)) {
                    try await session.publish(second, replacing: nil, backupCount: 1, coordinator: Self.b)
                }
                await #expect(throws: ClusterMembershipError.tableChanged(expected: 7, found: 1)) {
                    try await session.publish(second, replacing: 7, backupCount: 1, coordinator: Self.b)
                }
                // The session is still usable after a refusal (rolled back).
                try await session.publish(second, replacing: 1, backupCount: 1, coordinator: Self.b)
                await #expect(throws: ClusterMembershipError.tableChanged(expected: 1, found: 2)) {
                    try await session.publish(first, replacing: 1, backupCount: 1, coordinator: Self.b)
                }
            }
            #expect(try await store.table() == second, "the refused publications changed nothing")
        }
    }

    @Test func tableChangesSignalAPublication() async throws {
        try await ClusterTestDatabase.with { db in
            let listener = db.store(), publisher = db.store()
            let signals = SharedTestValue(0)
            let stream = listener.tableChanges()
            let reader = Task {
                for await _ in stream { signals.update { $0 += 1 } }
            }
            defer { reader.cancel() }
            // The first signal says it is listening.
            #expect(await eventually(timeout: .seconds(30)) { signals.value >= 1 })
            let before = signals.value
            try await db.publish(Self.table(version: 1), replacing: nil, with: publisher, as: Self.a)
            #expect(await eventually(timeout: .seconds(30)) { signals.value > before }, "a publication was signalled")
            let afterFirst = signals.value
            try await db.publish(Self.table(version: 2), replacing: 1, with: publisher, as: Self.b)
            #expect(await eventually(timeout: .seconds(30)) { signals.value > afterFirst })
        }
    }

    // MARK: Synced copies

    @Test func syncedCopiesAreRecordedOnlyForNamedReplicasUnderTheCurrentEpoch() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            #expect(try await store.syncedReplicas().isEmpty)
            // `table(version:)`: partition 0 (owner a, epoch 1) moves to d; 1 (owner b, epoch 2)
            // is backed by c; 7 (owner d, epoch 2) is backed by a and b and moves to c.
            let first = Self.table(version: 1)
            try await db.publish(first, replacing: nil, with: store, as: Self.a)
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: nil, epoch: 2)
            try await store.reportSynced(partition: 7, node: Self.c, incarnation: nil, epoch: 2)
            try await store.reportSynced(partition: 7, node: Self.a, incarnation: nil, epoch: 2)
            try await store.reportSynced(partition: 0, node: Self.d, incarnation: nil, epoch: 1)
            // Not named for partition 1, and a report under an epoch the partition no longer has.
            try await store.reportSynced(partition: 1, node: Self.d, incarnation: nil, epoch: 2)
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: nil, epoch: 1)
            #expect(try await db.store().syncedReplicas() == [0: [Self.d: 1], 1: [Self.c: 2], 7: [Self.a: 2, Self.c: 2]])

            // A new epoch for partition 1 replaces c's report; partition 7's target is dropped
            // (its copy no longer counts) while its backup a stays.
            var assignments = first.assignments
            assignments[1].epoch = 3
            assignments[7].migrationTarget = nil
            assignments[7].backups = [Self.a]
            let second = PartitionTable(version: 2, members: first.members, assignments: assignments)!
            try await db.publish(second, replacing: 1, with: store, as: Self.a)
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: nil, epoch: 3)
            #expect(try await db.store().syncedReplicas() == [0: [Self.d: 1], 1: [Self.c: 3], 7: [Self.a: 2]])
        }
    }

    @Test func theRunOfEachMemberIsReadBack() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            let first = Self.table(version: 1)
            let members = first.members.map { member in
                PartitionTable.Member(id: member.id, incarnation: member.id == Self.d ? nil : "run-\(member.id)")
            }
            let table = PartitionTable(version: 1, members: members, assignments: first.assignments)!
            try await db.publish(table, replacing: nil, with: store, as: Self.a)
            let read = try await db.store().table()
            #expect(read?.incarnation(of: Self.a) == "run-a")
            #expect(read?.incarnation(of: Self.c) == "run-c")
            #expect(read?.incarnation(of: Self.d) == nil, "no run recorded")
            #expect(read?.namesAnotherRun(of: Self.a, than: "run-a") == false)
            #expect(read?.namesAnotherRun(of: Self.a, than: "run-a2") == true)
            #expect(read?.namesAnotherRun(of: Self.d, than: "anything") == false)
        }
    }

    @Test func copiesCountOnlyForTheRunThatGotThem() async throws {
        try await ClusterTestDatabase.with { db in
            let store = db.store()
            // Partition 1 (epoch 2) is backed by c; partition 7 (epoch 2) by a and b.
            try await store.acquire(Self.lease(Self.c, run: "run-1"), duration: .seconds(60))
            try await store.acquire(Self.lease(Self.a, run: "run-1"), duration: .seconds(60))
            let first = Self.table(version: 1)
            let runs = { (c: String) in
                first.members.map { PartitionTable.Member(id: $0.id, incarnation: $0.id == Self.c ? c : "run-1") }
            }
            try await db.publish(PartitionTable(version: 1, members: runs("run-1"), assignments: first.assignments)!, replacing: nil, with: store, as: Self.a)
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: "run-1", epoch: 2)
            try await store.reportSynced(partition: 7, node: Self.a, incarnation: "run-1", epoch: 2)
            // A report about a run that does not hold the node's lease is ignored.
            try await store.reportSynced(partition: 7, node: Self.b, incarnation: "run-1", epoch: 2)
            #expect(try await store.syncedReplicas() == [1: [Self.c: 2], 7: [Self.a: 2]])

            // c restarts (its previous lease released): the next table names its new run, and
            // its previous run's copy no longer counts, although c is still partition 1's backup.
            try await store.release(Self.lease(Self.c, run: "run-1"))
            try await store.acquire(Self.lease(Self.c, run: "run-2"), duration: .seconds(60))
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: "run-1", epoch: 2)
            try await db.publish(PartitionTable(version: 2, members: runs("run-2"), assignments: first.assignments)!, replacing: 1, with: store, as: Self.a)
            #expect(try await store.syncedReplicas() == [7: [Self.a: 2]])
            try await store.reportSynced(partition: 1, node: Self.c, incarnation: "run-2", epoch: 2)
            #expect(try await store.syncedReplicas() == [1: [Self.c: 2], 7: [Self.a: 2]])
        }
    }
}
