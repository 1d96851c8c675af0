@testable import DataPlane
import Synchronization
import Testing
import Tenancy
import TopGunCore

/// The quota tables of migration 0008 in a real PostgreSQL: counts exchanged between live
/// nodes, and reservations that never add up to more than the limit.
@Suite(.enabled(if: PostgresTestEnvironment.isIncluded), .timeLimit(.minutes(2)))
struct PostgresClusterQuotaStoreTests {
    static let tenant = TenantID("ten_quota")
    typealias Lease = PostgresClusterStoreTests

    @Test func concurrentReservationsOfThreeNodesNeverExceedTheLimitAndDeadRunsStopCounting() async throws {
        try await ClusterTestDatabase.with { database in
            let nodes = [NodeID("a"), NodeID("b"), NodeID("c")]
            let stores = nodes.map { _ in database.store() }
            // Leases long enough for a loaded machine; c's is cut short below.
            for (node, store) in zip(nodes, stores) { try await store.acquire(Lease.lease(node), duration: .seconds(120)) }
            // 3 nodes × 10 requests of 3 slots each, all at once, against a limit of 20.
            let holdings = Holdings()
            let granted = try await withThrowingTaskGroup(of: Int64.self) { group in
                for (node, store) in zip(nodes, stores) {
                    for _ in 0..<10 {
                        group.addTask {
                            try await holdings.reserve(3, limit: 20, node: node, store: store)
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(granted == 20)
            #expect(try await holdings.reserve(1, limit: 20, node: nodes[0], store: stores[0]) == 0)
            // Subscriptions are counted apart.
            #expect(try await stores[0].reserve(.subscriptions, tenant: Self.tenant, wanted: 5, limit: 20, holding: 0, node: nodes[0], incarnation: "run-1") == 5)
            // Given back: room again.
            let bHolds = holdings.held(nodes[1])
            try await stores[1].setReservation(.connections, tenant: Self.tenant, reserved: bHolds - 2, node: nodes[1], incarnation: "run-1")
            holdings.set(nodes[1], bHolds - 2)
            #expect(try await holdings.reserve(5, limit: 20, node: nodes[2], store: stores[2]) == 2)
            // Once c's lease has expired, what its run reserved no longer counts.
            #expect(try await holdings.reserve(20, limit: 20, node: nodes[0], store: stores[0]) == 0)
            try await stores[2].acquire(Lease.lease(nodes[2]), duration: .seconds(1))
            #expect(await Lease.waitUntilExpired(nodes[2], in: stores[0]))
            let room = 20 - holdings.held(nodes[0]) - holdings.held(nodes[1])
            #expect(room > 0)
            #expect(try await holdings.reserve(20, limit: 20, node: nodes[0], store: stores[0]) == room)
            // A new run of a node writes its row whole: what the old run left is replaced.
            #expect(try await stores[1].reserve(.connections, tenant: Self.tenant, wanted: 0, limit: 20, holding: 1, node: nodes[1], incarnation: "run-2") == 0)
        }
    }

    /// What each node holds, as `ClusterSlots` keeps it (one reservation at a time per node).
    final class Holdings: Sendable {
        let held = Mutex<[NodeID: Int64]>([:])
        let locks = Mutex<[NodeID: Bool]>([:])

        func held(_ node: NodeID) -> Int64 { held.withLock { $0[node] ?? 0 } }
        func set(_ node: NodeID, _ value: Int64) { held.withLock { $0[node] = value } }

        func reserve(_ wanted: Int64, limit: Int64, node: NodeID, store: PostgresClusterStore) async throws -> Int64 {
            while locks.withLock({ locks in
                if locks[node] == true { return true }
                locks[node] = true
                return false
            }) { try await Task.sleep(for: .milliseconds(1)) }
            defer { locks.withLock { $0[node] = false } }
            let granted = try await store.reserve(
                .connections, tenant: PostgresClusterQuotaStoreTests.tenant, wanted: wanted, limit: limit, holding: held(node), node: node, incarnation: "run-1")
            held.withLock { $0[node, default: 0] += granted }
            return granted
        }
    }

    @Test func eachNodeReadsTheLiveNodesCountsOfItsTenants() async throws {
        try await ClusterTestDatabase.with { database in
            let (a, b) = (NodeID("a"), NodeID("b"))
            let (storeA, storeB) = (database.store(), database.store())
            try await storeA.acquire(Lease.lease(a), duration: .seconds(60))
            try await storeB.acquire(Lease.lease(b), duration: .seconds(60))
            let other = TenantID("ten_other")
            _ = try await storeA.exchange(
                node: a, second: 100, counts: [Self.tenant: .init(admitted: 40, demanded: 90, connections: 3), other: .init(admitted: 1, demanded: 1, connections: 1)])
            let seen = try await storeB.exchange(node: b, second: 101, counts: [Self.tenant: .init(admitted: 10, demanded: 10, connections: 2)])
            #expect(seen.members == [a, b])
            #expect(Set(seen.reports[Self.tenant] ?? []) == [
                .init(node: a, second: 100, admitted: 40, demanded: 90), .init(node: b, second: 101, admitted: 10, demanded: 10),
            ])
            #expect(seen.reports[other] == nil)
            #expect(seen.otherConnections == [Self.tenant: 3])
            // Rows older than the window are not read.
            let later = try await storeB.exchange(node: b, second: 120, counts: [Self.tenant: .init(admitted: 0, demanded: 0, connections: 0)])
            #expect(later.reports[Self.tenant] == [.init(node: b, second: 120, admitted: 0, demanded: 0)])
        }
    }
}

