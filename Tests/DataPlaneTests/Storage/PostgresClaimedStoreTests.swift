@testable import DataPlane
import Testing
import TopGunCore

// Nested in the serialized cluster store suite: its tables are published by coordinating
// (see there why that must not run beside other coordinating tests).
extension PostgresClusterStoreTests {
    /// A flush of a node of a cluster (`store(_:claiming:)` on PostgreSQL): rows are written
    /// only for partitions the published table still gives the node under the claimed epoch,
    /// while its lease is live, checked in the writing transaction.
    @Suite("PostgresClaimedStore")
    struct PostgresClaimedStoreTests {
        static let me = NodeID("me"), other = NodeID("other")

        /// Rows of four distinct partitions: one held, one whose epoch moved on, one owned by
        /// the other node, one the claim names no epoch for; and a second row of the held one.
        struct Rows {
            var held: StoredRecord
            var heldToo: StoredRecord
            var moved: StoredRecord
            var othersRow: StoredRecord
            var unclaimed: StoredRecord

            var all: [StoredRecord] { [held, heldToo, moved, othersRow, unclaimed] }
        }

        static func rows() throws -> Rows {
            var byPartition: [Int: [StoredRecord]] = [:]
            for index in 0..<5_000 {
                let row = StorageFixtures.lww("claimed-\(index)", .int(Int64(index)))
                byPartition[row.partition, default: []].append(row)
            }
            let partitions = byPartition.keys.sorted()
            let heldPartition = try #require(partitions.first { byPartition[$0]!.count >= 2 })
            let others = partitions.filter { $0 != heldPartition }
            try #require(others.count >= 3)
            return Rows(
                held: byPartition[heldPartition]![0], heldToo: byPartition[heldPartition]![1],
                moved: byPartition[others[0]]![0], othersRow: byPartition[others[1]]![0], unclaimed: byPartition[others[2]]![0])
        }

        /// Every partition `me`'s under epoch 1, except: `moved`'s under epoch 2 and `othersRow`'s
        /// owned by `other`.
        static func table(_ rows: Rows, version: Int64 = 1, heldEpoch: Int64 = 1) -> PartitionTable {
            PartitionTable(
                version: version, members: [PartitionTable.Member(id: me), PartitionTable.Member(id: other)],
                assignments: (0..<PartitionFunction.partitionCount).map { partition in
                    if partition == rows.othersRow.partition { return PartitionTable.Assignment(owner: other, backups: [me], epoch: 1) }
                    if partition == rows.moved.partition { return PartitionTable.Assignment(owner: me, epoch: 2) }
                    if partition == rows.held.partition { return PartitionTable.Assignment(owner: me, backups: [other], epoch: heldEpoch) }
                    return PartitionTable.Assignment(owner: me, epoch: 1)
                })!
        }

        /// `me`'s claim as of epoch 1 everywhere, naming no epoch for `unclaimed`'s partition.
        static func claim(_ rows: Rows, incarnation: String = "run-1", heldEpoch: Int64 = 1) -> OwnershipClaim {
            OwnershipClaim(node: me, incarnation: incarnation, epochs: [
                rows.held.partition: heldEpoch, rows.moved.partition: 1, rows.othersRow.partition: 1,
            ])
        }

        static func lease(_ run: String = "run-1") -> ClusterLease {
            ClusterLease(node: me, incarnation: run, clusterEndpoint: "127.0.0.1:7000", websocketURL: "ws://me/ws", httpURL: "http://me",
                         protocolVersion: 1)
        }

        /// A database with the table published and `me`'s lease live.
        static func withCluster(_ body: (ClusterTestDatabase, PostgresClusterStore, Rows) async throws -> Void) async throws {
            let rows = try Self.rows()
            try await ClusterTestDatabase.with { db in
                let store = db.store()
                try await store.acquire(Self.lease(), duration: .seconds(120))
                try await db.publish(Self.table(rows), replacing: nil, with: store, as: Self.me)
                try await body(db, store, rows)
            }
        }

        @Test func rowsOfHeldPartitionsAreWrittenAndTheOthersRefused() async throws {
            try await Self.withCluster { db, _, rows in
                let refused = try await db.storage.store(rows.all, claiming: Self.claim(rows))
                #expect(refused == PartitionSet([rows.moved.partition, rows.othersRow.partition, rows.unclaimed.partition]))
                let stored = try await loadEverything(db.storage)
                #expect(StorageFixtures.sorted(stored) == StorageFixtures.sorted([rows.held, rows.heldToo]),
                        "only the held partition's rows, in the same call")
            }
        }

        @Test func aBatchOfHeldPartitionsIsWrittenWhole() async throws {
            try await Self.withCluster { db, _, rows in
                var newer = rows.held
                newer.value = .lww(LWWRecord(value: .string("newer"), timestamp: StorageFixtures.timestamp(2_000_000_000_000)))
                // A row twice in one batch: the later one is stored.
                let refused = try await db.storage.store([rows.held, rows.heldToo, newer], claiming: Self.claim(rows))
                #expect(refused.isEmpty)
                #expect(StorageFixtures.sorted(try await loadEverything(db.storage)) == StorageFixtures.sorted([newer, rows.heldToo]))
                // And an empty batch refuses nothing.
                #expect(try await db.storage.store([], claiming: Self.claim(rows)).isEmpty)
            }
        }

        @Test func eachReasonToRefuseAPartitionRefusesItAlone() async throws {
            try await Self.withCluster { db, _, rows in
                for row in [rows.moved, rows.othersRow, rows.unclaimed] {
                    let refused = try await db.storage.store([row], claiming: Self.claim(rows))
                    #expect(refused == PartitionSet([row.partition]), "\(row.key.key)")
                }
                #expect(try await loadEverything(db.storage).isEmpty)
            }
        }

        @Test func aPartitionWhoseEpochMovedOnIsRefusedFromThenOn() async throws {
            try await Self.withCluster { db, store, rows in
                #expect(try await db.storage.store([rows.held], claiming: Self.claim(rows)).isEmpty)
                // The coordinator gives the held partition a new epoch (it went elsewhere and came back).
                try await db.publish(Self.table(rows, version: 2, heldEpoch: 3), replacing: 1, with: store, as: Self.me)
                var later = rows.held
                later.value = .lww(LWWRecord(value: .string("stale"), timestamp: StorageFixtures.timestamp(2_000_000_000_000)))
                #expect(try await db.storage.store([later], claiming: Self.claim(rows)) == PartitionSet([rows.held.partition]))
                #expect(try await loadEverything(db.storage) == [rows.held], "the deposed epoch's write did not land")
                // Under the new epoch it is written.
                #expect(try await db.storage.store([later], claiming: Self.claim(rows, heldEpoch: 3)).isEmpty)
                #expect(try await loadEverything(db.storage) == [later])
            }
        }

        @Test func anotherRunOfTheNodeIsRefusedEverything() async throws {
            try await Self.withCluster { db, _, rows in
                let refused = try await db.storage.store(rows.all, claiming: Self.claim(rows, incarnation: "run-0"))
                #expect(refused == PartitionSet(rows.all.map(\.partition)))
                #expect(try await loadEverything(db.storage).isEmpty)
            }
        }

        @Test func anExpiredLeaseIsRefusedEverything() async throws {
            let rows = try Self.rows()
            try await ClusterTestDatabase.with { db in
                let store = db.store()
                try await store.acquire(Self.lease(), duration: .milliseconds(300))
                try await db.publish(Self.table(rows), replacing: nil, with: store, as: Self.me)
                let expired = await eventually(timeout: .seconds(60)) {
                    (try? await store.leases())?.first { $0.lease.node == Self.me }?.isLive == false
                }
                #expect(expired)
                let refused = try await db.storage.store([rows.held, rows.heldToo], claiming: Self.claim(rows))
                #expect(refused == PartitionSet([rows.held.partition]))
                #expect(try await loadEverything(db.storage).isEmpty)
            }
        }

        @Test func withoutAPublishedTableEverythingIsRefused() async throws {
            let rows = try Self.rows()
            try await ClusterTestDatabase.with { db in
                try await db.store().acquire(Self.lease(), duration: .seconds(60))
                let refused = try await db.storage.store(rows.all, claiming: Self.claim(rows))
                #expect(refused == PartitionSet(rows.all.map(\.partition)))
                #expect(try await loadEverything(db.storage).isEmpty)
            }
        }

        @Test func anInvalidRecordFailsTheWholeCallBeforeAnythingIsWritten() async throws {
            try await Self.withCluster { db, _, rows in
                let invalid = StoredRecord(key: StorageFixtures.key("bad\u{0}key"), partition: rows.held.partition, value: .counter(PNCounter()))
                await #expect(throws: StorageError.self) {
                    _ = try await db.storage.store([rows.held, invalid], claiming: Self.claim(rows))
                }
                let stored = try await loadEverything(db.storage)
                #expect(stored.isEmpty)
            }
        }
    }
}
