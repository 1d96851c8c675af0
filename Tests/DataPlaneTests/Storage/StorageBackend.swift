@testable import DataPlane
import Foundation
import Logging
import Testing

/// One kind of `ServerStorage` under test, and how to make a fresh, empty one.
enum StorageBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case memory
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Every backend this run covers: PostgreSQL when configured or required.
    static var all: [StorageBackend] {
        PostgresTestEnvironment.isIncluded ? allCases : [.memory, .sqlite]
    }

    /// The database-backed ones.
    static var databases: [StorageBackend] {
        all.filter { $0 != .memory }
    }

    /// Runs `body` with a prepared, empty storage of this kind and removes it afterwards.
    /// `rowsPerStatement` makes the database storages split batches into many statements.
    func withStorage(rowsPerStatement: Int? = nil, _ body: (any ServerStorage, StorageBackendContext) async throws -> Void) async throws {
        switch self {
        case .memory:
            let storage = MemoryServerStorage()
            try await storage.prepare()
            try await body(storage, StorageBackendContext())
            await storage.shutdown()
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("topgun-storage-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("records.sqlite").path
            let storage = SQLiteServerStorage(path: path, logger: quietLogger)
            if let rowsPerStatement { await storage.setRowsPerStatement(rowsPerStatement) }
            try await storage.prepare()
            do {
                try await body(storage, StorageBackendContext(sqlitePath: path))
            } catch {
                await storage.shutdown()
                throw error
            }
            await storage.shutdown()
        case .postgres:
            let database = try await PostgresTestDatabase.create()
            let storage = PostgresServerStorage(
                endpoint: database.url, maximumConnections: 4, connectTimeout: .seconds(5),
                rowsPerStatement: rowsPerStatement ?? 20_000, logger: quietLogger)
            do {
                try await storage.prepare()
                try await body(storage, StorageBackendContext(postgres: database))
            } catch {
                await storage.shutdown()
                await database.drop()
                throw error
            }
            await storage.shutdown()
            await database.drop()
        }
    }
}

/// Where a backend's data lives, for tests that reach past the storage (corrupt rows).
struct StorageBackendContext: Sendable {
    var sqlitePath: String?
    var postgres: PostgresTestDatabase?
}

let quietLogger: Logger = {
    var logger = Logger(label: "topgun.tests.storage")
    logger.logLevel = .critical
    return logger
}()
