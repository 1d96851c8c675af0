import Foundation
import Migrations
import SQLiteNIO

/// Applies `MigrationCatalog.migrations(for: .sqlite)` to a SQLite database:
///
///     try await SQLiteMigrationRunner(connection: connection).run()
///
/// Applied versions are recorded in `schema_migrations(version, name, applied_at)`; each
/// pending migration runs in its own `BEGIN IMMEDIATE` transaction (which takes SQLite's write
/// lock, so two processes migrating one file take turns) and is re-checked inside it, so running
/// twice, or concurrently from two connections, applies everything exactly once.
///
/// The connection must not be used by other tasks while this runs (sqlite-nio does not keep
/// one task's transaction apart from another's on a shared connection).
public struct SQLiteMigrationRunner: Sendable {
    public let connection: SQLiteConnection
    public let migrations: [Migration]

    /// - Parameter migrations: defaults to every SQLite migration in the catalog.
    public init(connection: SQLiteConnection, migrations: [Migration] = MigrationCatalog.migrations(for: .sqlite)) {
        self.connection = connection
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Applies what is pending and returns the migrations it applied (empty when up to date).
    @discardableResult
    public func run() async throws -> [Migration] {
        do {
            _ = try await connection.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    INTEGER PRIMARY KEY NOT NULL,
                    name       TEXT NOT NULL,
                    applied_at INTEGER NOT NULL
                )
                """)
        } catch {
            throw SQLiteErrors.map(error)
        }
        var applied: [Migration] = []
        for migration in migrations {
            if try await apply(migration) { applied.append(migration) }
        }
        return applied
    }

    /// The versions already applied, ascending.
    public func appliedVersions() async throws -> [Int] {
        do {
            let rows = try await connection.query("SELECT version FROM schema_migrations ORDER BY version")
            return rows.compactMap { $0.column("version")?.integer.map { Int($0) } }
        } catch {
            throw SQLiteErrors.map(error)
        }
    }

    private func apply(_ migration: Migration) async throws -> Bool {
        do {
            _ = try await connection.query("BEGIN IMMEDIATE")
        } catch {
            throw SQLiteErrors.map(error)
        }
        do {
            let done = try await connection.query(
                "SELECT 1 FROM schema_migrations WHERE version = ?", [.integer(SQLiteInt64(migration.version))])
            if !done.isEmpty {
                _ = try await connection.query("COMMIT")
                return false
            }
            for statement in migration.statements {
                do {
                    _ = try await connection.query(statement)
                } catch {
                    throw MigrationError(version: migration.version, name: migration.name, message: String(describing: error))
                }
            }
            let now = Int(Date().timeIntervalSince1970 * 1_000_000)
            _ = try await connection.query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [.integer(SQLiteInt64(migration.version)), .text(migration.name), .integer(SQLiteInt64(now))])
            _ = try await connection.query("COMMIT")
            return true
        } catch {
            _ = try? await connection.query("ROLLBACK")
            if error is MigrationError { throw error }
            throw SQLiteErrors.map(error)
        }
    }
}
