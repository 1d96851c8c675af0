import ArgumentParser
import Foundation
import Metadata

/// `topgun migrate`: applies `Migrations/` to a PostgreSQL database.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the SQL migrations to a PostgreSQL database (idempotent, safe to run concurrently)."
    )

    @Option(help: "PostgreSQL URL (env TOPGUN_POSTGRES_URL).") var postgresURL: String?
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.bootstrap()
        guard let url = postgresURL ?? Environment.value("TOPGUN_POSTGRES_URL") else {
            exitWithError("no PostgreSQL URL: pass --postgres-url or set TOPGUN_POSTGRES_URL")
        }
        let applied = try await PostgresMigrationRunner.migrate(endpoint: try PostgresEndpoint(url: url), logger: logger)
        print(applied.isEmpty ? "migrations: up to date" : "migrations applied: " + applied.map(\.fileName).joined(separator: ", "))
    }
}
