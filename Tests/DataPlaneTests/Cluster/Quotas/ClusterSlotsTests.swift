@testable import DataPlane
import Logging
import Synchronization
import Tenancy
import Testing
import TopGunCore

/// `ClusterSlots` against a store in memory that keeps the same promise as PostgreSQL's (the
/// reservations never add up to more than the limit), and one that cannot be reached.
@Suite struct ClusterSlotsTests {
    final class MemoryStore: ClusterQuotaStore {
        let reserved = Mutex<[NodeID: Int64]>([:])
        let failing = Atomic<Bool>(false)

        func exchange(node: NodeID, second: Int64, counts: [TenantID: ClusterTenantCounts]) async throws -> ClusterQuotaExchange {
            ClusterQuotaExchange()
        }

        func reserve(
            _ kind: ClusterSlotKind, tenant: TenantID, wanted: Int64, limit: Int64, holding: Int64, node: NodeID, incarnation: String
        ) async throws -> Int64 {
            if failing.load(ordering: .relaxed) { throw ClusterMessageError("the database is unreachable") }
            await Task.yield()
            return reserved.withLock { reserved in
                let others = reserved.filter { $0.key != node }.values.reduce(0, +)
                let granted = max(0, min(wanted, limit - others - holding))
                reserved[node] = holding + granted
                return granted
            }
        }

        func setReservation(_ kind: ClusterSlotKind, tenant: TenantID, reserved count: Int64, node: NodeID, incarnation: String) async throws {
            if failing.load(ordering: .relaxed) { throw ClusterMessageError("the database is unreachable") }
            reserved.withLock { $0[node] = count }
        }
    }

    static let tenant = TenantID("ten_slots")

    static func slots(_ store: MemoryStore, node: String) -> ClusterSlots {
        ClusterSlots(store: store, node: NodeID(node), incarnation: { "run" }, members: { 3 }, logger: Logger(label: "test"))
    }

    @Test func chunksAreAQuarterOfAFairPartBetweenOneAndSixteen() {
        #expect(ClusterSlots.chunk(limit: 4, members: 3) == 1)
        #expect(ClusterSlots.chunk(limit: 120, members: 3) == 10)
        #expect(ClusterSlots.chunk(limit: 100_000, members: 3) == 16)
        #expect(ClusterSlots.chunk(limit: 0, members: 0) == 1)
    }

    @Test(arguments: [1, 7, 50]) func nodesAdmittingAtOnceNeverHoldMoreThanTheLimit(limit: Int64) async {
        let store = MemoryStore()
        let nodes = ["a", "b", "c"].map { Self.slots(store, node: $0) }
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<(3 * Int(limit) + 9) {
                group.addTask { await nodes[index % 3].acquire(.connections, tenant: Self.tenant, limit: limit) }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted <= limit)
        #expect(admitted >= 1)
        let inUse = nodes.reduce(0) { $0 + $1.holding(.connections, tenant: Self.tenant).inUse }
        #expect(inUse == admitted)
        // What a node frees and gives back, another admits.
        nodes[0].release(.connections, tenant: Self.tenant, count: nodes[0].holding(.connections, tenant: Self.tenant).inUse)
        for node in nodes { await node.giveBackSurplus() }
        let held = nodes.reduce(Int64(0)) { $0 + $1.holding(.connections, tenant: Self.tenant).reserved }
        #expect(store.reserved.withLock { $0.values.reduce(0, +) } == held)
        if held < limit { #expect(await nodes[1].acquire(.connections, tenant: Self.tenant, limit: limit)) }
    }

    @Test func anUnreachableStoreAdmitsOnlyWithinWhatIsHeldAndKeepsWhatItCouldNotGiveBack() async {
        let store = MemoryStore()
        let node = Self.slots(store, node: "a")
        #expect(await node.acquire(.subscriptions, tenant: Self.tenant, limit: 40))  // reserves a chunk of 3
        #expect(node.holding(.subscriptions, tenant: Self.tenant) == .init(inUse: 1, reserved: 3))
        #expect(store.reserved.withLock { $0[NodeID("a")] } == 3)
        store.failing.store(true, ordering: .relaxed)
        #expect(await node.acquire(.subscriptions, tenant: Self.tenant, limit: 40))
        #expect(await node.acquire(.subscriptions, tenant: Self.tenant, limit: 40))
        #expect(await node.acquire(.subscriptions, tenant: Self.tenant, limit: 40) == false)
        node.release(.subscriptions, tenant: Self.tenant, count: 2)
        await node.giveBackSurplus()
        // Not written: held as given back here (never more than the table says), and the row
        // is written again once the table answers.
        #expect(node.holding(.subscriptions, tenant: Self.tenant) == .init(inUse: 1, reserved: 1))
        #expect(store.reserved.withLock { $0[NodeID("a")] } == 3)
        store.failing.store(false, ordering: .relaxed)
        await node.giveBackSurplus()
        #expect(store.reserved.withLock { $0[NodeID("a")] } == 1)
    }

    @Test func aNewRunOfTheNodeWritesWhatItHoldsAgain() async {
        let store = MemoryStore()
        let run = Mutex("run-1")
        let node = ClusterSlots(store: store, node: NodeID("a"), incarnation: { run.withLock { $0 } }, members: { 1 }, logger: Logger(label: "test"))
        for _ in 0..<4 { #expect(await node.acquire(.connections, tenant: Self.tenant, limit: 40)) }
        await node.giveBackSurplus()
        #expect(store.reserved.withLock { $0[NodeID("a")] } == 4)
        // The lease lapsed: the table's row of run-1 no longer counts for the others (the
        // fake forgets it); the node's clients are still there.
        run.withLock { $0 = "run-2" }
        store.reserved.withLock { $0[NodeID("a")] = 0 }
        await node.giveBackSurplus()
        #expect(store.reserved.withLock { $0[NodeID("a")] } == 4)
        #expect(node.holding(.connections, tenant: Self.tenant) == .init(inUse: 4, reserved: 4))
    }

    @Test func manyClientsAtOnceMakeFewReservations() async {
        final class Counting: ClusterQuotaStore {
            let inner = MemoryStore()
            let calls = Atomic<Int>(0)
            func exchange(node: NodeID, second: Int64, counts: [TenantID: ClusterTenantCounts]) async throws -> ClusterQuotaExchange {
                ClusterQuotaExchange()
            }
            func reserve(
                _ kind: ClusterSlotKind, tenant: TenantID, wanted: Int64, limit: Int64, holding: Int64, node: NodeID, incarnation: String
            ) async throws -> Int64 {
                calls.add(1, ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(20))
                return try await inner.reserve(kind, tenant: tenant, wanted: wanted, limit: limit, holding: holding, node: node, incarnation: incarnation)
            }
            func setReservation(_ kind: ClusterSlotKind, tenant: TenantID, reserved: Int64, node: NodeID, incarnation: String) async throws {
                try await inner.setReservation(kind, tenant: tenant, reserved: reserved, node: node, incarnation: incarnation)
            }
        }
        let store = Counting()
        let node = ClusterSlots(store: store, node: NodeID("a"), incarnation: { "run" }, members: { 3 }, logger: Logger(label: "test"))
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 { group.addTask { await node.acquire(.connections, tenant: Self.tenant, limit: 150) } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 150)
        #expect(store.calls.load(ordering: .relaxed) < 40)
    }
}
