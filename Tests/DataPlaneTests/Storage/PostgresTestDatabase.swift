@testable import DataPlane
import Foundation
import Logging
import PostgresNIO
import Metadata
import Testing

/// The PostgreSQL server the tests may use: `TOPGUN_TEST_POSTGRES_URL` (`ops/postgres start`
/// prints one). Without it the PostgreSQL cases are skipped, unless `CI` or
/// `TOPGUN_REQUIRE_POSTGRES` is set: then they fail, saying why.
enum PostgresTestEnvironment {
    static let urlText: String? = {
        let value = ProcessInfo.processInfo.environment["TOPGUN_TEST_POSTGRES_URL"] ?? ""
        return value.isEmpty ? nil : value
    }()

    static let isRequired: Bool = {
        let environment = ProcessInfo.processInfo.environment
        return [environment["CI"], environment["TOPGUN_REQUIRE_POSTGRES"]].contains { ($0 ?? "").isEmpty == false }
    }()

    /// Whether PostgreSQL cases are part of this run (they fail when required but unset).
    static var isIncluded: Bool { urlText != nil || isRequired }

    static let missingMessage: Comment = """
        TOPGUN_TEST_POSTGRES_URL is not set, but CI or TOPGUN_REQUIRE_POSTGRES requires the PostgreSQL \
        tests: start a server with `ops/postgres start` and export the URL it prints.
        """

    /// The server's URL, or a recorded failure.
    static func url() throws -> PostgresEndpoint {
        guard let urlText else {
            Issue.record(missingMessage)
            throw StorageError.unavailable("TOPGUN_TEST_POSTGRES_URL is not set")
        }
        return try PostgresEndpoint(url: urlText)
    }
}

/// A database of its own for one test, created through a maintenance connection to the
/// server's URL and dropped (with its connections) at the end.
struct PostgresTestDatabase: Sendable {
    let url: PostgresEndpoint
    let maintenanceURL: PostgresEndpoint

    static func create() async throws -> PostgresTestDatabase {
        let server = try PostgresTestEnvironment.url()
        let name = "topgun_storage_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        try await execute("CREATE DATABASE \(name)", on: server)
        return PostgresTestDatabase(url: server.with(database: name), maintenanceURL: server)
    }

    func drop() async {
        do {
            try await Self.execute("DROP DATABASE IF EXISTS \(url.database) WITH (FORCE)", on: maintenanceURL)
        } catch {
            Issue.record("could not drop test database \(url.database): \(error)")
        }
    }

    /// Runs one statement as the maintenance user on `database` (the server's default when nil).
    func execute(_ sql: String, database: String? = nil) async throws {
        try await Self.execute(sql, on: database.map { maintenanceURL.with(database: $0) } ?? maintenanceURL)
    }

    static func execute(_ sql: String, on url: PostgresEndpoint) async throws {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 1, logger: testLogger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: testLogger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    static let testLogger: Logger = {
        var logger = Logger(label: "topgun.tests.postgres")
        logger.logLevel = .critical
        return logger
    }()
}
