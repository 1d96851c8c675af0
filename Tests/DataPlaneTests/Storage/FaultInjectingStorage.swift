@testable import DataPlane
import Tenancy

/// A storage that passes everything to another one, except that it can be told to fail
/// (the database is "down"), to hang (a call that never answers) or to pause (a slow commit
/// that lands once the mode changes), and counts the calls.
actor FaultInjectingStorage: ServerStorage {
    enum Mode: Sendable { case healthy, failing, hanging, pausing }

    let inner: any ServerStorage
    private(set) var mode: Mode = .healthy
    private(set) var storeCalls = 0
    private(set) var storedBatchSizes: [Int] = []
    private var hung: [CheckedContinuation<Void, Never>] = []

    init(_ inner: any ServerStorage = MemoryServerStorage()) {
        self.inner = inner
    }

    func set(_ mode: Mode) {
        self.mode = mode
        if mode != .hanging && mode != .pausing {
            for continuation in hung { continuation.resume() }
            hung.removeAll()
        }
    }

    func prepare() async throws { try await inner.prepare() }

    func loadPartition(_ partition: Int) async throws -> [StoredRecord] {
        try await inner.loadPartition(partition)
    }

    func store(_ records: [StoredRecord]) async throws {
        storeCalls += 1
        switch mode {
        case .failing:
            throw StorageError.unavailable("injected: database down")
        case .hanging:
            await withCheckedContinuation { hung.append($0) }
            throw StorageError.unavailable("injected: hung call finally failed")
        case .pausing:
            await withCheckedContinuation { hung.append($0) }
            storedBatchSizes.append(records.count)
            try await inner.store(records)
        case .healthy:
            storedBatchSizes.append(records.count)
            try await inner.store(records)
        }
    }

    func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws {
        try await inner.delete(keys, kind: kind)
    }

    func deleteTenant(_ tenant: TenantID) async throws { try await inner.deleteTenant(tenant) }

    func storedBytes() async throws -> [TenantID: Int64] { try await inner.storedBytes() }

    func isReachable() async -> Bool { mode == .healthy ? await inner.isReachable() : false }

    func shutdown() async { await inner.shutdown() }
}
