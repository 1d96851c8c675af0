import Foundation
@testable import Migrations
import Testing

@Suite("Migration catalog")
struct MigrationCatalogTests {
    /// `Migrations/` of this checkout, found from this file's path.
    static let migrationsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Migrations")

    @Test("every .sql file on disk is in the catalog, and nothing else", arguments: SQLDialect.allCases)
    func catalogMatchesTheFilesOnDisk(_ dialect: SQLDialect) throws {
        let folder = Self.migrationsDirectory.appendingPathComponent(dialect.rawValue)
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        let catalog = MigrationCatalog.migrations(for: dialect)
        #expect(catalog.map(\.fileName).sorted() == onDisk)
        for migration in catalog {
            let text = try String(contentsOf: folder.appendingPathComponent(migration.fileName), encoding: .utf8)
            #expect(migration.sql == text, "embedded \(migration.fileName) differs from the file: rebuild")
        }
    }

    @Test("file names are NNNN_name.<dialect>.sql and match version and name", arguments: SQLDialect.allCases)
    func fileNamesFollowTheConvention(_ dialect: SQLDialect) {
        for migration in MigrationCatalog.migrations(for: dialect) {
            let expected = String(repeating: "0", count: max(0, 4 - String(migration.version).count)) + "\(migration.version)_\(migration.name).\(dialect.rawValue).sql"
            #expect(migration.fileName == expected)
        }
    }

    @Test func versionsAreContiguousSortedAndTheSameInBothDialects() {
        let sqlite = MigrationCatalog.migrations(for: .sqlite).map(\.version)
        let postgres = MigrationCatalog.migrations(for: .postgres).map(\.version)
        #expect(sqlite == Array(1...sqlite.count))
        #expect(postgres == sqlite)
        #expect(MigrationCatalog.migrations(for: .sqlite).map(\.name) == MigrationCatalog.migrations(for: .postgres).map(\.name))
    }

    @Test func firstMigrationCreatesTenantsAndSigningKeys() throws {
        for dialect in SQLDialect.allCases {
            let first = try #require(MigrationCatalog.migrations(for: dialect).first)
            #expect(first.version == 1)
            let statements = first.statements
            #expect(statements.contains { $0.contains("CREATE TABLE tenants") })
            #expect(statements.contains { $0.contains("CREATE TABLE signing_keys") })
        }
    }

    @Test func splitterSeparatesStatementsAndRespectsQuotesCommentsAndDollarBodies() {
        let sql = """
            -- a comment; with a semicolon
            CREATE TABLE a (x TEXT DEFAULT 'semi;colon', "odd;name" INT);
            /* block; comment */
            INSERT INTO a (x) VALUES ('it''s; fine');
            CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;
            DO $$ BEGIN PERFORM 1; END $$;
            SELECT $1;
            -- trailing comment only
            """
        let statements = SQLStatementSplitter.split(sql)
        #expect(statements.count == 5)
        #expect(statements[0].hasSuffix(#"CREATE TABLE a (x TEXT DEFAULT 'semi;colon', "odd;name" INT)"#))
        #expect(statements[1].hasSuffix("INSERT INTO a (x) VALUES ('it''s; fine')"))
        #expect(statements[2] == "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql")
        #expect(statements[3] == "DO $$ BEGIN PERFORM 1; END $$")
        #expect(statements[4] == "SELECT $1")
    }

    @Test func commentOnlyFileHasNoStatements() {
        #expect(SQLStatementSplitter.split("-- records: written by the storage engineer\n").isEmpty)
        #expect(SQLStatementSplitter.split("").isEmpty)
        #expect(SQLStatementSplitter.split("  ;  ; ").isEmpty)
    }

    @Test func unterminatedQuotesDoNotCrash() {
        #expect(SQLStatementSplitter.split("SELECT 'open").count == 1)
        #expect(SQLStatementSplitter.split("SELECT $tag$ open").count == 1)
        #expect(SQLStatementSplitter.split("/* open").isEmpty)
    }
}
