@testable import DataPlane
import Synchronization
import Tenancy
import Testing
import TopGunCore

/// A value several tasks read and change (test bookkeeping).
final class SharedTestValue<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update(_ body: @Sendable (inout Value) -> Void) { mutex.withLock { body(&$0) } }
}

/// A storage shared with other nodes, as far as one node sees it: `store(_:claiming:)`
/// refuses the partitions another node has taken over and writes the rest.
actor ClaimRefusingStorage: ServerStorage {
    let inner = MemoryServerStorage()
    private(set) var refusing: PartitionSet
    private(set) var claims: [OwnershipClaim] = []
    private(set) var plainStores = 0

    init(refusing: PartitionSet = PartitionSet()) {
        self.refusing = refusing
    }

    func refuse(_ partitions: PartitionSet) { refusing = partitions }

    func prepare() async throws { try await inner.prepare() }
    func loadPartition(_ partition: Int) async throws -> [StoredRecord] { try await inner.loadPartition(partition) }

    func store(_ records: [StoredRecord]) async throws {
        plainStores += 1
        try await inner.store(records)
    }

    func store(_ records: [StoredRecord], claiming claim: OwnershipClaim) async throws -> PartitionSet {
        claims.append(claim)
        let refused = PartitionSet(records.map(\.partition).filter { refusing.contains($0) || claim.epochs[$0] == nil })
        try await inner.store(records.filter { !refused.contains($0.partition) })
        return refused
    }

    func delete(_ keys: [StorageKey], kind: StoredValue.Kind?) async throws { try await inner.delete(keys, kind: kind) }
    func deleteTenant(_ tenant: TenantID) async throws { try await inner.deleteTenant(tenant) }
    func storedBytes() async throws -> [TenantID: Int64] { try await inner.storedBytes() }
    func isReachable() async -> Bool { true }
    func shutdown() async { await inner.shutdown() }
}

/// Claims every partition under epoch 1, as node `me` in run `run-1`.
struct EveryPartitionClaims: OwnershipClaims {
    func claim(for partitions: PartitionSet) -> OwnershipClaim? {
        OwnershipClaim(node: NodeID("me"), incarnation: "run-1", epochs: Dictionary(uniqueKeysWithValues: partitions.map { ($0, Int64(1)) }))
    }
}

extension StorageTests {
    /// The write-behind actor on a node of a cluster: partitions the storage refuses are
    /// fenced, their rows go to `displaced`, and their acknowledgements are refused.
    @Suite("WriteBehindDisplaced")
    struct WriteBehindDisplacedTests {
        static let configuration = WriteBehindConfiguration(
            maxBatch: 500, flushInterval: .milliseconds(2), maxPending: 100_000, initialBackoff: .milliseconds(5),
            maxBackoff: .milliseconds(50), storeTimeout: .seconds(30))

        /// Two keys of one partition and one of another.
        static func keys() throws -> (first: String, second: String, other: String) {
            let first = "refused-0"
            let partition = StorageFixtures.lww(first, .int(0)).partition
            let second = try #require((1..<100_000).lazy.map { "refused-\($0)" }.first { StorageFixtures.lww($0, .int(0)).partition == partition })
            let other = try #require((0..<100).lazy.map { "kept-\($0)" }.first { StorageFixtures.lww($0, .int(0)).partition != partition })
            return (first, second, other)
        }

        @Test(.timeLimit(.minutes(1)))
        func refusedRowsGoToDisplacedAndTheirAcknowledgementsAreRefused() async throws {
            let (first, second, other) = try Self.keys()
            let refusedRows = [StorageFixtures.lww(first, .string("a")), StorageFixtures.lww(second, .string("b"))]
            let keptRow = StorageFixtures.lww(other, .string("c"))
            let refusedPartition = refusedRows[0].partition
            let storage = ClaimRefusingStorage(refusing: PartitionSet([refusedPartition]))
            let displaced = SharedTestValue<[[StoredRecord]]>([])
            let queue = WriteBehindQueue(
                storage: storage, configuration: Self.configuration, claims: EveryPartitionClaims(),
                displaced: { rows in displaced.update { $0.append(rows) } }, logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }

            let refusedTicket = await queue.enqueue(refusedRows)
            let keptTicket = await queue.enqueue([keptRow])
            // Long timeouts: a `false` before the time limit can only come from the refusal.
            #expect(await queue.waitUntilDurable(keptTicket, timeout: .seconds(600)))
            #expect(await queue.waitUntilDurable(refusedTicket, timeout: .seconds(600)) == false)
            #expect(await eventually(timeout: .seconds(30)) { !displaced.value.isEmpty })
            let handedOver = displaced.value.joined()
            #expect(StorageFixtures.sorted(Array(handedOver)) == StorageFixtures.sorted(refusedRows), "exactly the refused rows")
            #expect(try await loadEverything(storage) == [keptRow])
            #expect(await queue.status.fencedPartitions == PartitionSet([refusedPartition]))
            let claims = await storage.claims
            #expect(!claims.isEmpty)
            #expect(claims.allSatisfy { $0.node == NodeID("me") && $0.incarnation == "run-1" })
            #expect(await storage.plainStores == 0, "a clustered queue always claims")

            // Later writes of the refused partition are refused at once, and other partitions go on.
            let late = await queue.enqueue([StorageFixtures.lww(first, .string("late"))])
            #expect(await queue.waitUntilDurable(late, timeout: .seconds(600)) == false)
            let more = await queue.enqueue([StorageFixtures.lww(other, .string("d"))])
            #expect(await queue.waitUntilDurable(more, timeout: .seconds(600)))
            #expect(displaced.value.joined().count == 2, "nothing else was handed over")
        }

        @Test(.timeLimit(.minutes(1)))
        func aMixedWriteIsRefusedWhileTheOtherPartitionsRowIsStored() async throws {
            let (first, _, other) = try Self.keys()
            let refused = StorageFixtures.lww(first, .int(1))
            let kept = StorageFixtures.lww(other, .int(2))
            let storage = ClaimRefusingStorage(refusing: PartitionSet([refused.partition]))
            let displaced = SharedTestValue<[StoredRecord]>([])
            let queue = WriteBehindQueue(
                storage: storage, configuration: Self.configuration, claims: EveryPartitionClaims(),
                displaced: { rows in displaced.update { $0 += rows } }, logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }
            let ticket = await queue.enqueue([refused, kept])
            #expect(await queue.waitUntilDurable(ticket, timeout: .seconds(600)) == false, "one of its rows will never be written here")
            #expect(await eventually(timeout: .seconds(30)) { !displaced.value.isEmpty })
            #expect(displaced.value == [refused])
            #expect(try await loadEverything(storage) == [kept])
        }

        @Test func aQueueWithoutClaimsStoresEverythingThePlainWay() async throws {
            let (first, _, _) = try Self.keys()
            let row = StorageFixtures.lww(first, .int(1))
            let storage = ClaimRefusingStorage(refusing: PartitionSet([row.partition]))
            let queue = WriteBehindQueue(storage: storage, configuration: Self.configuration, logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }
            let ticket = await queue.enqueue([row])
            #expect(await queue.waitUntilDurable(ticket, timeout: .seconds(60)))
            #expect(await storage.claims.isEmpty)
            #expect(try await loadEverything(storage) == [row])
        }

        @Test func aStorageNoOtherNodeWritesRefusesNothing() async throws {
            for backend in [StorageBackend.memory, .sqlite] {
                try await backend.withStorage { storage, _ in
                    let rows = StorageFixtures.everyKind
                    let claim = OwnershipClaim(node: NodeID("me"), incarnation: "run-1", epochs: [:])
                    let refused = try await storage.store(rows, claiming: claim)
                    #expect(refused.isEmpty, "\(backend)")
                    #expect(StorageFixtures.sorted(try await loadEverything(storage)) == StorageFixtures.sorted(rows), "\(backend)")
                }
            }
        }
    }
}
