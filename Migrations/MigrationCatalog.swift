import Foundation

// The SQL files of this folder, embedded in the binary (Package.swift lists each one with
// `.embedInCode`), so `topgun` finds them from any working directory.
//
// SwiftPM flattens resource names: two files called `0001_x.sql` in `sqlite/` and `postgres/`
// collide, hence the dialect in every file name. It names each embedded file
// `PackageResources.<file name with non-identifier characters, and a leading digit, as "_">`:
// `sqlite/0001_tenants_and_signing_keys.sqlite.sql` is `_001_tenants_and_signing_keys_sqlite_sql`.
//
// Adding a migration: put `NNNN_name.<dialect>.sql` in `sqlite/` and `postgres/`, list both in
// Package.swift, and add both to `entries` below. A test fails if a file on disk is missing here.

/// The databases the migrations are written for.
public enum SQLDialect: String, Sendable, CaseIterable {
    case sqlite
    case postgres
}

/// One numbered schema change.
public struct Migration: Sendable, Equatable {
    /// The number in the file name (`0002_...` is 2); applied in increasing order.
    public var version: Int
    /// The file name's words (`tenants_and_signing_keys`).
    public var name: String
    /// The whole file.
    public var sql: String
    /// The file as it lies in `Migrations/<dialect>/`.
    public var fileName: String

    public init(version: Int, name: String, sql: String, fileName: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.fileName = fileName
    }

    /// The file's statements, one at a time: neither postgres-nio (extended protocol only) nor
    /// sqlite-nio (first statement only) runs a multi-statement string. Split on `;` outside
    /// quotes, comments and dollar-quoted bodies; statements that are only comments are dropped.
    public var statements: [String] { SQLStatementSplitter.split(sql) }
}

/// Every migration, per dialect.
public enum MigrationCatalog {
    /// The migrations for `dialect`, sorted by version.
    public static func migrations(for dialect: SQLDialect) -> [Migration] {
        entries
            .filter { $0.dialect == dialect }
            .map { Migration(version: $0.version, name: $0.name, sql: String(decoding: $0.bytes, as: UTF8.self), fileName: $0.fileName) }
            .sorted { $0.version < $1.version }
    }

    private struct Entry {
        var dialect: SQLDialect
        var version: Int
        var name: String
        var fileName: String
        var bytes: [UInt8]
    }

    private static let entries: [Entry] = [
        Entry(dialect: .sqlite, version: 1, name: "tenants_and_signing_keys",
              fileName: "0001_tenants_and_signing_keys.sqlite.sql", bytes: PackageResources._001_tenants_and_signing_keys_sqlite_sql),
        Entry(dialect: .postgres, version: 1, name: "tenants_and_signing_keys",
              fileName: "0001_tenants_and_signing_keys.postgres.sql", bytes: PackageResources._001_tenants_and_signing_keys_postgres_sql),
        Entry(dialect: .sqlite, version: 2, name: "records",
              fileName: "0002_records.sqlite.sql", bytes: PackageResources._002_records_sqlite_sql),
        Entry(dialect: .postgres, version: 2, name: "records",
              fileName: "0002_records.postgres.sql", bytes: PackageResources._002_records_postgres_sql),
        Entry(dialect: .sqlite, version: 3, name: "control_plane",
              fileName: "0003_control_plane.sqlite.sql", bytes: PackageResources._003_control_plane_sqlite_sql),
        Entry(dialect: .postgres, version: 3, name: "control_plane",
              fileName: "0003_control_plane.postgres.sql", bytes: PackageResources._003_control_plane_postgres_sql),
        Entry(dialect: .sqlite, version: 4, name: "record_sequence",
              fileName: "0004_record_sequence.sqlite.sql", bytes: PackageResources._004_record_sequence_sqlite_sql),
        Entry(dialect: .postgres, version: 4, name: "record_sequence",
              fileName: "0004_record_sequence.postgres.sql", bytes: PackageResources._004_record_sequence_postgres_sql),
        Entry(dialect: .sqlite, version: 5, name: "map_kinds",
              fileName: "0005_map_kinds.sqlite.sql", bytes: PackageResources._005_map_kinds_sqlite_sql),
        Entry(dialect: .postgres, version: 5, name: "map_kinds",
              fileName: "0005_map_kinds.postgres.sql", bytes: PackageResources._005_map_kinds_postgres_sql),
        Entry(dialect: .sqlite, version: 6, name: "cluster",
              fileName: "0006_cluster.sqlite.sql", bytes: PackageResources._006_cluster_sqlite_sql),
        Entry(dialect: .postgres, version: 6, name: "cluster",
              fileName: "0006_cluster.postgres.sql", bytes: PackageResources._006_cluster_postgres_sql),
        Entry(dialect: .sqlite, version: 7, name: "cluster_incarnations",
              fileName: "0007_cluster_incarnations.sqlite.sql", bytes: PackageResources._007_cluster_incarnations_sqlite_sql),
        Entry(dialect: .postgres, version: 7, name: "cluster_incarnations",
              fileName: "0007_cluster_incarnations.postgres.sql", bytes: PackageResources._007_cluster_incarnations_postgres_sql),
        Entry(dialect: .sqlite, version: 8, name: "cluster_quotas",
              fileName: "0008_cluster_quotas.sqlite.sql", bytes: PackageResources._008_cluster_quotas_sqlite_sql),
        Entry(dialect: .postgres, version: 8, name: "cluster_quotas",
              fileName: "0008_cluster_quotas.postgres.sql", bytes: PackageResources._008_cluster_quotas_postgres_sql),
    ]
}

/// Splits SQL text into statements. Knows `'...'` (with `''`), `"..."`, `-- ...`, `/* ... */`
/// and PostgreSQL `$tag$ ... $tag$` bodies, enough for migration files.
enum SQLStatementSplitter {
    static func split(_ sql: String) -> [String] {
        let bytes = Array(sql.utf8)
        var statements: [String] = []
        var start = 0
        var index = 0
        var hasCode = false  // the current statement has something besides comments and space

        func finish(_ end: Int) {
            if hasCode {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                if !text.isEmpty { statements.append(text) }
            }
            start = end + 1
            hasCode = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                index += 2
                while index + 1 < bytes.count && !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) { index += 1 }
                index += 2
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                hasCode = true
                index += 1
                while index < bytes.count {
                    if bytes[index] == byte {
                        // A doubled quote is an escaped quote, not the end.
                        if index + 1 < bytes.count && bytes[index + 1] == byte { index += 2; continue }
                        break
                    }
                    index += 1
                }
                index += 1
                continue
            case UInt8(ascii: "$"):
                hasCode = true
                if let tagEnd = dollarTagEnd(bytes, from: index) {
                    let tag = Array(bytes[index...tagEnd])
                    var search = tagEnd + 1
                    while search + tag.count <= bytes.count && !bytes[search..<(search + tag.count)].elementsEqual(tag) { search += 1 }
                    index = min(bytes.count, search + tag.count)
                    continue
                }
            case UInt8(ascii: ";"):
                finish(index)
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                break
            default:
                hasCode = true
            }
            index += 1
        }
        finish(bytes.count)
        return statements
    }

    /// If a dollar-quote tag (`$$` or `$name$`) starts at `index`, the index of its closing `$`.
    private static func dollarTagEnd(_ bytes: [UInt8], from index: Int) -> Int? {
        var cursor = index + 1
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if byte == UInt8(ascii: "$") { return cursor }
            let isTagCharacter = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") && cursor > index + 1)
                || byte == UInt8(ascii: "_")
            guard isTagCharacter else { return nil }
            cursor += 1
        }
        return nil
    }
}
