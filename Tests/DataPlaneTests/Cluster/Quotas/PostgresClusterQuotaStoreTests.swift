@testable import DataPlane
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
            for (node, store) in zip(nodes, stores) { try await store.acquire(Lease.lease(node), duration: .seconds(2)) }
            // 3 nodes × 10 requests of 3 slots each, all at once, against a limit of 20.
            let granted = try await withThrowingTaskGroup(of: Int64.self) { group in
                for (node, store) in zip(nodes, stores) {
                    for _ in 0..<10 {
                        group.addTask {
                            try await store.reserve(.connections, tenant: Self.tenant, wanted: 3, limit: 20, node: node, incarnation: "run-1")
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(granted == 20)
            #expect(try await stores[0].reserve(.connections, tenant: Self.tenant, wanted: 1, limit: 20, node: nodes[0], incarnation: "run-1") == 0)
            // Subscriptions are counted apart.
            #expect(try await stores[0].reserve(.subscriptions, tenant: Self.tenant, wanted: 5, limit: 20, node: nodes[0], incarnation: "run-1") == 5)
            // Given back: room again.
            try await stores[1].giveBack(.connections, tenant: Self.tenant, count: 2, node: nodes[1], incarnation: "run-1")
            #expect(try await stores[2].reserve(.connections, tenant: Self.tenant, wanted: 5, limit: 20, node: nodes[2], incarnation: "run-1") == 2)
            // Once c's lease has expired, what its run reserved no longer counts.
            let held = try await stores[0].reserve(.connections, tenant: Self.tenant, wanted: 20, limit: 20, node: nodes[0], incarnation: "run-1")
            #expect(held == 0)
            #expect(await Lease.waitUntilExpired(nodes[2], in: stores[0]))
            try await stores[0].acquire(Lease.lease(nodes[0]), duration: .seconds(60))
            try await stores[1].acquire(Lease.lease(nodes[1]), duration: .seconds(60))
            let freed = try await stores[0].reserve(.connections, tenant: Self.tenant, wanted: 20, limit: 20, node: nodes[0], incarnation: "run-1")
            #expect(freed > 0)
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

