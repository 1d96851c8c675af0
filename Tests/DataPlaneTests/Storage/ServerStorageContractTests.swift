@testable import DataPlane
import Foundation
import Metadata
import PostgresNIO
import SQLiteNIO
import Tenancy
import Testing
import TopGunCore

extension StorageTests {
    /// The promises of `ServerStorage`, checked against every implementation: memory, SQLite,
    /// and PostgreSQL when `TOPGUN_TEST_POSTGRES_URL` names a server (each test on a database
    /// of its own).
    @Suite("ServerStorage contract")
    struct ServerStorageContractTests {
        @Test(.enabled(if: PostgresTestEnvironment.isIncluded, "TOPGUN_TEST_POSTGRES_URL is unset: the PostgreSQL cases of this suite are skipped"))
        func postgresCasesAreIncluded() {}

        @Test(arguments: StorageBackend.all)
        func everyKindRoundTripsExactly(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let records = StorageFixtures.everyKind
                try await storage.store(records)
                let loaded = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded) == StorageFixtures.sorted(records))
            }
        }

        /// Keys and map names are stored as the client's bytes: canonically equivalent ones
        /// ("\u{e9}" and "e\u{301}") are separate rows, in one batch or in two.
        @Test(arguments: StorageBackend.all)
        func canonicallyEquivalentKeysAreSeparateRows(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let records = [
                    StorageFixtures.lww("\u{e9}", "composed"), StorageFixtures.lww("e\u{301}", "decomposed"),
                    StorageFixtures.lww("k", "composed map", map: "caf\u{e9}"), StorageFixtures.lww("k", "decomposed map", map: "cafe\u{301}"),
                ]
                #expect(Set(records.map(\.key)).count == 4)
                try await storage.store(records)
                try await storage.store([StorageFixtures.lww("e\u{301}", "decomposed, again", millis: 1_800_000_000_000)])
                let loaded = try await loadEverything(storage)
                var expected = records
                expected[1] = StorageFixtures.lww("e\u{301}", "decomposed, again", millis: 1_800_000_000_000)
                #expect(StorageFixtures.sorted(loaded) == StorageFixtures.sorted(expected))
            }
        }

        @Test(arguments: StorageBackend.all)
        func upsertReplacesTheRow(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                try await storage.store([StorageFixtures.lww("a", .int(1), millis: 1)])
                try await storage.store([StorageFixtures.lww("a", .int(2), millis: 2)])
                let loaded = try await loadEverything(storage)
                #expect(loaded == [StorageFixtures.lww("a", .int(2), millis: 2)])
            }
        }

        /// `mayExistInStorage: false` is only a hint: when the row exists after all, the write
        /// still replaces it (PostgreSQL retries the batch as upserts).
        @Test(arguments: StorageBackend.all)
        func aWrongNewRowHintStillReplacesTheRow(_ backend: StorageBackend) async throws {
            try await backend.withStorage(rowsPerStatement: 40) { storage, _ in
                try await storage.store(StorageFixtures.many(100))
                var newer = StorageFixtures.many(100, version: 1)
                for index in newer.indices { newer[index].mayExistInStorage = false }
                let fresh = StorageFixtures.many(50, prefix: "fresh").map {
                    StoredRecord(key: $0.key, partition: $0.partition, value: $0.value, mayExistInStorage: false)
                }
                try await storage.store(newer + fresh)
                let loaded = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded) == StorageFixtures.sorted(newer + fresh))
                #expect(loaded.allSatisfy { $0.mayExistInStorage }, "rows read back exist")
            }
        }

        @Test(arguments: StorageBackend.all)
        func aRowTwiceInOneBatchKeepsTheLater(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                try await storage.store([
                    StorageFixtures.lww("a", .int(1), millis: 1),
                    StorageFixtures.lww("b", .int(1), millis: 1),
                    StorageFixtures.lww("a", .int(3), millis: 3),
                ])
                let loaded = StorageFixtures.sorted(try await loadEverything(storage))
                #expect(loaded == [StorageFixtures.lww("a", .int(3), millis: 3), StorageFixtures.lww("b", .int(1), millis: 1)])
            }
        }

        @Test(arguments: StorageBackend.all)
        func kindsOfOneKeyAreSeparateRows(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let key = StorageFixtures.key("shared", map: "things")
                let rows = [
                    StorageFixtures.record(key, .lww(LWWRecord(value: .int(1), timestamp: StorageFixtures.timestamp(1)))),
                    StorageFixtures.record(key, .orMap(ORMapEntry(key: "shared", records: [], tombstones: ["1:0:n"]))),
                    StorageFixtures.record(key, .counter(PNCounter(positive: ["n": 1]))),
                ]
                try await storage.store(rows)
                let loaded1 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded1) == StorageFixtures.sorted(rows))
                try await storage.delete([key], kind: .lww)
                let loaded2 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded2) == StorageFixtures.sorted(Array(rows.dropFirst())))
                try await storage.delete([key])
                let loaded3 = try await loadEverything(storage)
                #expect(loaded3.isEmpty)
            }
        }

        @Test(arguments: StorageBackend.all)
        func loadPartitionReturnsOnlyThatPartition(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let records = StorageFixtures.many(300)
                try await storage.store(records)
                let partitions = Set(records.map(\.partition))
                #expect(partitions.count > 100)
                for partition in partitions.sorted().prefix(20) {
                    let loaded = try await storage.loadPartition(partition)
                    #expect(StorageFixtures.sorted(loaded) == StorageFixtures.sorted(records.filter { $0.partition == partition }))
                }
                let unused = (0..<PartitionFunction.partitionCount).first { !partitions.contains($0) }
                if let unused { #expect(try await storage.loadPartition(unused).isEmpty) }
            }
        }

        @Test(arguments: StorageBackend.all)
        func deleteRemovesTheRowsAndIgnoresUnknownKeys(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let records = StorageFixtures.many(10)
                try await storage.store(records)
                try await storage.delete([records[0].key, records[5].key, StorageFixtures.key("never-stored")])
                let loaded = StorageFixtures.sorted(try await loadEverything(storage))
                #expect(loaded == StorageFixtures.sorted(records.enumerated().filter { $0.offset != 0 && $0.offset != 5 }.map(\.element)))
                try await storage.delete([])
            }
        }

        @Test(arguments: StorageBackend.all)
        func deleteTenantLeavesOtherTenants(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let a = StorageFixtures.many(50, tenant: StorageFixtures.tenantA)
                // Same map names and keys in another tenant: must not be touched.
                let b = StorageFixtures.many(50, tenant: StorageFixtures.tenantB)
                try await storage.store(a + b)
                try await storage.deleteTenant(StorageFixtures.tenantA)
                let loaded4 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded4) == StorageFixtures.sorted(b))
            }
        }

        /// A deleted tenant's purge: real deletes of every kind of row, only that tenant's,
        /// and safe to repeat (a retried purge) or to run for a tenant with no rows.
        @Test(arguments: StorageBackend.all)
        func deleteTenantRemovesEveryKindAndIsIdempotent(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let a = StorageFixtures.everyKind
                let b = StorageFixtures.everyKind.map { record in
                    var moved = record
                    moved.key.tenant = StorageFixtures.tenantB
                    moved.partition = PartitionFunction.partition(forKey: record.key.key, tenantID: StorageFixtures.tenantB.rawValue)
                    return moved
                }
                try await storage.store(a + b)
                try await storage.deleteTenant(StorageFixtures.tenantA)
                try await storage.deleteTenant(StorageFixtures.tenantA)
                try await storage.deleteTenant(TenantID("tenant-never-stored"))
                #expect(StorageFixtures.sorted(try await loadEverything(storage)) == StorageFixtures.sorted(b))
                // The rows are gone, not tombstoned: writing the tenant again starts from nothing.
                try await storage.store([StorageFixtures.lww("live", .int(1))])
                let loaded = try await loadEverything(storage).filter { $0.key.tenant == StorageFixtures.tenantA }
                #expect(loaded == [StorageFixtures.lww("live", .int(1))])
            }
        }

        /// Stored bytes per tenant are the payload sizes of its rows, the same on every store.
        @Test(arguments: StorageBackend.all)
        func storedBytesAreThePayloadSizesPerTenant(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                #expect(try await storage.storedBytes().isEmpty)
                let a = StorageFixtures.many(30, tenant: StorageFixtures.tenantA)
                let b = StorageFixtures.many(5, tenant: StorageFixtures.tenantB)
                try await storage.store(a + b)
                let expected = { (records: [StoredRecord]) in Int64(records.reduce(0) { $0 + StoredValueCodec.encode($1.value).count }) }
                let measured = try await storage.storedBytes()
                #expect(measured == [StorageFixtures.tenantA: expected(a), StorageFixtures.tenantB: expected(b)])
                try await storage.deleteTenant(StorageFixtures.tenantB)
                #expect(try await storage.storedBytes() == [StorageFixtures.tenantA: expected(a)])
            }
        }

        @Test(arguments: StorageBackend.all)
        func aLargeBatchLandsCompletely(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let records = StorageFixtures.many(10_000)
                try await storage.store(records)
                let loaded5 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded5) == StorageFixtures.sorted(records))
                // And again, every row replaced.
                let newer = StorageFixtures.many(10_000, version: 1)
                try await storage.store(newer)
                let loaded6 = try await loadEverything(storage)
                #expect(StorageFixtures.sorted(loaded6) == StorageFixtures.sorted(newer))
            }
        }

        @Test(arguments: StorageBackend.all)
        func anInvalidRecordFailsTheWholeBatchBeforeWriting(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let bad = [
                    StoredRecord(key: StorageFixtures.key("x"), partition: 271, value: .counter(PNCounter())),
                    StorageFixtures.lww("nul\u{0}", .int(1)),
                    StorageFixtures.lww(String(repeating: "k", count: StorageKey.maxKeyBytes + 1), .int(1)),
                    StorageFixtures.lww("empty-map", .int(1), map: ""),
                ]
                for invalid in bad {
                    await #expect(throws: StorageError.self) {
                        try await storage.store(StorageFixtures.many(100) + [invalid])
                    }
                }
                let remaining = try await loadEverything(storage)
                #expect(remaining.isEmpty)
            }
        }

        /// The database's own transaction, not our validation, keeps a batch whole: a row the
        /// database refuses (partition outside the CHECK constraint) at the end of a batch split
        /// over many statements rolls back the statements before it.
        @Test(arguments: StorageBackend.databases)
        func aBatchTheDatabaseRefusesLeavesNothing(_ backend: StorageBackend) async throws {
            try await backend.withStorage(rowsPerStatement: 500) { storage, _ in
                let batch = StorageFixtures.many(5_000) + [StoredRecord(key: StorageFixtures.key("bad"), partition: 999, value: .counter(PNCounter()))]
                do {
                    switch storage {
                    case let sqlite as SQLiteServerStorage: try await sqlite.write(batch)
                    case let postgres as PostgresServerStorage: try await postgres.write(batch)
                    default: Issue.record("not a database storage")
                    }
                    Issue.record("the database accepted a row outside its CHECK constraint")
                } catch let error as StorageError {
                    guard case .rejected = error else {
                        Issue.record("expected .rejected, got \(error)")
                        return
                    }
                }
                let loaded7 = try await loadEverything(storage)
                #expect(loaded7.isEmpty)
                // The storage is still usable afterwards.
                try await storage.store(StorageFixtures.many(3))
                let loaded8 = try await loadEverything(storage)
                #expect(loaded8.count == 3)
            }
        }

        @Test(arguments: StorageBackend.databases)
        func aCorruptPayloadIsATypedErrorNamingTheRow(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, context in
                let record = StorageFixtures.lww("victim", .int(1))
                if let path = context.sqlitePath {
                    let connection = try await SQLiteConnection.open(storage: .file(path: path))
                    _ = try await connection.query(
                        "INSERT INTO records (tenant_id, kind, map_name, record_key, partition_id, payload, updated_at) VALUES (?, 'lww', 'todos', 'victim', ?, x'c1ff', 0)",
                        [.text(record.key.tenant.rawValue), .integer(record.partition)])
                    try await connection.close()
                } else if let database = context.postgres {
                    try await database.execute(
                        "INSERT INTO records (tenant_id, kind, map_name, record_key, partition_id, payload) VALUES ('\(record.key.tenant.rawValue)', 'lww', 'todos', 'victim', \(record.partition), '\\xc1ff'::bytea)",
                        database: database.url.database)
                }
                await #expect {
                    _ = try await storage.loadPartition(record.partition)
                } throws: { error in
                    guard case .corruptPayload(let row, _)? = error as? StorageError else { return false }
                    return row == "tenant-a/lww/todos/victim"
                }
            }
        }

        @Test(arguments: StorageBackend.all)
        func prepareIsIdempotentAndKeepsRows(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                try await storage.store(StorageFixtures.many(5))
                try await storage.prepare()
                try await storage.prepare()
                let loaded9 = try await loadEverything(storage)
                #expect(loaded9.count == 5)
            }
        }

        @Test(arguments: StorageBackend.all)
        func isReachableWhileOpenAndNotAfterShutdown(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                #expect(await storage.isReachable())
                await storage.shutdown()
                #expect(await storage.isReachable() == false)
            }
        }

        @Test(arguments: StorageBackend.databases)
        func rowsSurviveReopening(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, context in
                let records = StorageFixtures.everyKind
                try await storage.store(records)
                await storage.shutdown()
                let reopened: any ServerStorage
                if let path = context.sqlitePath {
                    reopened = SQLiteServerStorage(path: path, logger: quietLogger)
                } else {
                    // Through the Metadata module's endpoint this time (TLS preferred, then plain).
                let database = try #require(context.postgres).url.database
                let endpoint = try PostgresEndpoint(url: try #require(PostgresTestEnvironment.urlText)).with(database: database)
                reopened = PostgresServerStorage(endpoint: endpoint, logger: quietLogger)
                }
                try await reopened.prepare()
                let loaded10 = try await loadEverything(reopened)
                #expect(StorageFixtures.sorted(loaded10) == StorageFixtures.sorted(records))
                await reopened.shutdown()
            }
        }
    }
}
