import Foundation
import Logging
@testable import Metadata
import PostgresNIO
import SQLiteNIO
import Tenancy
import Testing

/// A fresh database of one kind, for one test, and store instances opened on it.
protocol StoreHarness: Sendable {
    var kind: StoreKind { get }
    /// Opens a store instance on this test's database (every call a new instance, same data).
    func openStore(masterKey: [UInt8]) async throws -> any MetadataStore
    /// The `secret_ciphertext` column of a key, read straight from the table.
    func rawSecretCiphertext(kid: String) async throws -> [UInt8]?
    /// The versions in `schema_migrations`.
    func appliedMigrationVersions() async throws -> [Int]
    /// The `response_body` column of an idempotency record, read straight from the table.
    func rawIdempotencyResponseBody(scope: String, key: String) async throws -> [UInt8]?
}

extension StoreHarness {
    func openStore() async throws -> any MetadataStore { try await openStore(masterKey: TestMasterKey.bytes) }

    /// A store on this test's database, migrated.
    func migratedStore() async throws -> any MetadataStore {
        let store = try await openStore()
        try await store.migrate()
        return store
    }

    /// A migrated store as the control plane uses it (fails the test if the store's kind does
    /// not implement `ControlPlaneStore`).
    func controlPlaneStore() async throws -> any ControlPlaneStore {
        try #require(try await migratedStore() as? any ControlPlaneStore, "\(kind) store is not a ControlPlaneStore")
    }
}

enum TestMasterKey {
    static let bytes: [UInt8] = Array(0..<32)
    static let other: [UInt8] = Array(100..<132)
}

/// The two store implementations. Each test gets its own database: a temporary SQLite file, or
/// a PostgreSQL database created for it and dropped afterwards.
enum StoreKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    var description: String { rawValue }

    func withHarness(_ body: (any StoreHarness) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let harness = try SQLiteHarness()
            do {
                try await body(harness)
            } catch {
                await harness.tearDown()
                throw error
            }
            await harness.tearDown()
        case .postgres:
            let harness = try await PostgresHarness.make()
            do {
                try await body(harness)
            } catch {
                await harness.tearDown()
                throw error
            }
            await harness.tearDown()
        }
    }
}

/// Stores opened by a harness, shut down at the end of the test.
actor OpenedStores {
    private(set) var stores: [any MetadataStore] = []
    func add(_ store: any MetadataStore) { stores.append(store) }
    func shutDownAll() async {
        for store in stores { await store.shutdown() }
        stores.removeAll()
    }
}

// MARK: SQLite

final class SQLiteHarness: StoreHarness {
    let kind = StoreKind.sqlite
    let directory: URL
    let path: String
    let opened = OpenedStores()

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("topgun-metadata-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("metadata.sqlite").path
    }

    func openStore(masterKey: [UInt8]) async throws -> any MetadataStore {
        let store = try await SQLiteMetadataStore.open(.file(path), masterKey: masterKey, logger: PostgresTestEnvironment.logger)
        await opened.add(store)
        return store
    }

    /// A private store instance for raw reads (never the one under test).
    private func rawStore() async throws -> SQLiteMetadataStore {
        let store = try await SQLiteMetadataStore.open(.file(path), masterKey: TestMasterKey.bytes)
        await opened.add(store)
        return store
    }

    func rawSecretCiphertext(kid: String) async throws -> [UInt8]? {
        let rows = try await rawStore().rawQuery("SELECT secret_ciphertext FROM signing_keys WHERE kid = ?", [.text(kid)])
        return rows.first?.column("secret_ciphertext")?.blob.map { Array($0.readableBytesView) }
    }

    func appliedMigrationVersions() async throws -> [Int] {
        try await rawStore().rawQuery("SELECT version FROM schema_migrations ORDER BY version")
            .compactMap { $0.column("version")?.integer.map { Int($0) } }
    }

    func rawIdempotencyResponseBody(scope: String, key: String) async throws -> [UInt8]? {
        let rows = try await rawStore().rawQuery(
            "SELECT response_body FROM idempotency_records WHERE scope = ? AND key = ?", [.text(scope), .text(key)])
        return rows.first?.column("response_body")?.blob.map { Array($0.readableBytesView) }
    }

    func tearDown() async {
        await opened.shutDownAll()
        try? FileManager.default.removeItem(at: directory)
    }
}

// MARK: PostgreSQL

/// How the PostgreSQL tests find their server: `TOPGUN_TEST_POSTGRES_URL` (what `ops/postgres
/// start` prints). Without it they are skipped, unless `CI` or `TOPGUN_REQUIRE_POSTGRES` is set:
/// then they run and fail, saying what is missing.
enum PostgresTestEnvironment {
    static var url: String? {
        guard let value = ProcessInfo.processInfo.environment["TOPGUN_TEST_POSTGRES_URL"], !value.isEmpty else { return nil }
        return value
    }

    static var isRequired: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["CI", "TOPGUN_REQUIRE_POSTGRES"].contains { name in
            guard let value = environment[name]?.lowercased() else { return false }
            return !value.isEmpty && value != "0" && value != "false"
        }
    }

    /// Whether the PostgreSQL suites run (and then fail if there is no URL).
    static var shouldRun: Bool { url != nil || isRequired }

    static func endpoint() throws -> PostgresEndpoint {
        guard let url else {
            throw SetupError(
                "TOPGUN_TEST_POSTGRES_URL is not set, and CI or TOPGUN_REQUIRE_POSTGRES requires the PostgreSQL tests: "
                    + "start a server with `ops/postgres start` and export the URL it prints")
        }
        return try PostgresEndpoint(url: url)
    }

    /// Warnings and up only: the tests print what they check, not routine progress.
    static let logger: Logger = {
        var logger = Logger(label: "topgun.metadata.tests")
        logger.logLevel = .warning
        return logger
    }()

    struct SetupError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `body` on a short-lived connection to the URL's (maintenance) database.
    static func withMaintenanceConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let endpoint = try endpoint()
        try await endpoint.checkReachable(timeout: .seconds(5), logger: logger)
        let connection = try await PostgresConnection.connect(
            configuration: try endpoint.connectionConfiguration(), id: Int.random(in: 1_000_000...9_999_999), logger: logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Creates an empty database with a unique name and returns its endpoint.
    static func createDatabase() async throws -> PostgresEndpoint {
        let name = "tg_meta_" + IDGenerator.randomString(length: 12)
        try await withMaintenanceConnection { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), logger: logger).collect()
        }
        return try endpoint().with(database: name)
    }

    static func dropDatabase(_ name: String) async {
        _ = try? await withMaintenanceConnection { connection in
            _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"), logger: logger).collect()
        }
    }
}

final class PostgresHarness: StoreHarness {
    let kind = StoreKind.postgres
    let endpoint: PostgresEndpoint
    let opened = OpenedStores()

    private init(endpoint: PostgresEndpoint) {
        self.endpoint = endpoint
    }

    static func make() async throws -> PostgresHarness {
        PostgresHarness(endpoint: try await PostgresTestEnvironment.createDatabase())
    }

    func openStore(masterKey: [UInt8]) async throws -> any MetadataStore {
        let store = try await PostgresMetadataStore.connect(endpoint: endpoint, masterKey: masterKey, logger: PostgresTestEnvironment.logger)
        await opened.add(store)
        return store
    }

    /// Runs `body` on a connection of its own to this test's database.
    func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: try endpoint.connectionConfiguration(), id: Int.random(in: 1_000_000...9_999_999),
            logger: PostgresTestEnvironment.logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    func rawSecretCiphertext(kid: String) async throws -> [UInt8]? {
        try await withConnection { connection in
            let rows = try await connection.query("SELECT secret_ciphertext FROM signing_keys WHERE kid = \(kid)", logger: PostgresTestEnvironment.logger).collect()
            return try rows.first?.decode(Data?.self).map { [UInt8]($0) }
        }
    }

    func appliedMigrationVersions() async throws -> [Int] {
        try await withConnection { connection in
            try await connection.query("SELECT version FROM schema_migrations ORDER BY version", logger: PostgresTestEnvironment.logger)
                .collect().map { Int(try $0.decode(Int32.self)) }
        }
    }

    func rawIdempotencyResponseBody(scope: String, key: String) async throws -> [UInt8]? {
        try await withConnection { connection in
            let rows = try await connection.query(
                "SELECT response_body FROM idempotency_records WHERE scope = \(scope) AND key = \(key)", logger: PostgresTestEnvironment.logger
            ).collect()
            return try rows.first?.decode(Data?.self).map { [UInt8]($0) }
        }
    }

    func tearDown() async {
        await opened.shutDownAll()
        await PostgresTestEnvironment.dropDatabase(endpoint.database)
    }
}
