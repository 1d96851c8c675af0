import Foundation
@testable import Metadata
import Migrations
import SQLiteNIO
import Tenancy
import Testing

@Suite("SQLite metadata store specifics")
struct SQLiteSpecificTests {
    @Test func inMemoryStoreWorksAndIsPrivate() async throws {
        let store = try await SQLiteMetadataStore.open(.memory, masterKey: TestMasterKey.bytes)
        let other = try await SQLiteMetadataStore.open(.memory, masterKey: TestMasterKey.bytes)
        try await store.migrate()
        try await other.migrate()
        let tenant = try await store.createTenant(slug: "acme", displayName: "Acme", plan: "free")
        #expect(try await store.tenant(id: tenant.id) == tenant)
        #expect(try await other.tenant(id: tenant.id) == nil)
        await store.shutdown()
        await other.shutdown()
    }

    @Test func fileStoreUsesWALAndForeignKeys() async throws {
        try await StoreKind.sqlite.withHarness { harness in
            let store = try #require(try await harness.migratedStore() as? SQLiteMetadataStore)
            #expect(try await store.rawQuery("PRAGMA journal_mode").first?.column("journal_mode")?.string == "wal")
            #expect(try await store.rawQuery("PRAGMA foreign_keys").first?.column("foreign_keys")?.integer == 1)
        }
    }

    @Test func storeCalledFromInsideItsOwnWriteThrowsInsteadOfWaitingForEver() async throws {
        try await StoreKind.sqlite.withHarness { harness in
            let store = try #require(try await harness.migratedStore() as? SQLiteMetadataStore)
            let tenant = Tenant(id: IDGenerator.tenantID(), slug: "acme", displayName: "Acme", plan: "free", status: .active, createdAt: Date())
            do {
                try await store.write { transaction in
                    try await transaction.insertTenant(tenant)
                    _ = try await store.tenant(id: tenant.id)  // the gate is held by this write
                }
                Issue.record("the store answered from inside its own write")
            } catch let error as MetadataError {
                guard case .invalid = error else { Issue.record("expected invalid, got \(error)"); return }
            }
            #expect(try await store.tenant(id: tenant.id) == nil)
        }
    }

    @Test func fileInANewDirectoryIsCreated() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("topgun-meta-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("nested/dev.sqlite").path
        let store = try await SQLiteMetadataStore.open(.file(path), masterKey: TestMasterKey.bytes)
        try await store.migrate()
        await store.shutdown()
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func failedMigrationRollsBackWhole() async throws {
        let connection = try await SQLiteConnection.open(storage: .memory)
        let good = MigrationCatalog.migrations(for: .sqlite)
        try await SQLiteMigrationRunner(connection: connection).run()
        let broken = Migration(version: 99, name: "broken", sql: "CREATE TABLE half_done (x INTEGER);\nSELEC oops;", fileName: "0099_broken.sqlite.sql")
        let runner = SQLiteMigrationRunner(connection: connection, migrations: [broken])
        do {
            try await runner.run()
            Issue.record("a broken migration succeeded")
        } catch let error as MigrationError {
            #expect(error.version == 99 && error.name == "broken")
        }
        #expect(try await connection.query("SELECT name FROM sqlite_master WHERE name = 'half_done'").isEmpty)
        #expect(try await runner.appliedVersions() == good.map(\.version))
        try await connection.close()
    }

    @Test func migrationRunnerReportsWhatItApplied() async throws {
        let connection = try await SQLiteConnection.open(storage: .memory)
        let runner = SQLiteMigrationRunner(connection: connection)
        #expect(try await runner.run().map(\.version) == MigrationCatalog.migrations(for: .sqlite).map(\.version))
        #expect(try await runner.run().isEmpty)
        try await connection.close()
    }
}
