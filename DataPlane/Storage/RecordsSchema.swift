import Migrations

/// The `records` table's migration (`Migrations/<dialect>/0002_records.*.sql`), applied by a
/// storage's `prepare()`. Every statement in it is idempotent (`IF NOT EXISTS`), so applying
/// it next to the migration runner, before or after, changes nothing.
enum RecordsSchema {
    static let migrationVersion = 2

    /// The statements of the records migration for `dialect`.
    static func statements(for dialect: SQLDialect) -> [String] {
        guard let migration = MigrationCatalog.migrations(for: dialect).first(where: { $0.version == migrationVersion }) else {
            // The catalog is compiled in: a missing entry is a build mistake, caught by tests.
            preconditionFailure("Migrations/\(dialect.rawValue)/0002_records is missing from MigrationCatalog")
        }
        return migration.statements
    }

    /// Column list shared by the statements of both dialects.
    static let columns = "tenant_id, kind, map_name, record_key, partition_id, payload"
}
