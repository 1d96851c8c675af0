import Foundation
import Logging
import ServiceLifecycle
import Tenancy
import TopGunCore

/// Makes a node's tenant quotas hold for the cluster (issue 15): once a second, just after
/// the wall-clock second turns, it reports this node's count of each limited tenant's
/// operations and connections, reads the other live nodes' (`ClusterQuotaStore.exchange`),
/// and gives the tenant's bucket on this node its part of the limit for the next second
/// (`ClusterRateShare`). It also gives back the connection and subscription slots this node
/// reserved beyond its use (`ClusterSlots`), and tells the usage meter how many of a tenant's
/// connections the other nodes hold (the exported peak is the cluster's).
///
/// When the table cannot be reached, the last parts stay for `staleAfter`, then each node
/// takes an equal part of the limit.
struct ClusterQuotaService: Service {
    let store: any ClusterQuotaStore
    let node: NodeID
    let policies: TenantPolicies
    let sessions: SessionRegistry
    let usage: UsageMeter
    let slots: ClusterSlots
    let members: @Sendable () -> Int
    let logger: Logger

    /// How long a tenant stays followed after its last operation here.
    static let followFor: Int64 = 30
    static let staleAfter: Duration = .seconds(10)
    /// How long after the wall-clock second turns the counts are exchanged.
    static let offsetMillis: Int64 = 200

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var followed: [TenantID: (since: Int64, lastActive: Int64)] = [:]
            var lastExchange = ContinuousClock.now
            var warned = false
            while !Task.isCancelled {
                let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
                let next = (nowMillis / 1000 + 1) * 1000 + Self.offsetMillis
                try? await Task.sleep(for: .milliseconds(next - nowMillis))
                guard !Task.isCancelled else { return }
                let second = next / 1000 - 1
                await slots.giveBackSurplus()
                let counts = policies.takeOperationCounts()
                for tenant in counts.keys { followed[tenant] = (followed[tenant]?.since ?? second, second) }
                followed = followed.filter { $0.value.lastActive >= second - Self.followFor }
                // Tenants with a limit on operations followed here, and every tenant with
                // connections here (for the cluster's peak).
                let connections = sessions.countsByTenant()
                var rows: [TenantID: ClusterTenantCounts] = [:]
                var limits: [TenantID: Int64] = [:]
                for tenant in Set(followed.keys).union(connections.keys) {
                    let count = counts[tenant] ?? (0, 0)
                    rows[tenant] = ClusterTenantCounts(admitted: count.admitted, demanded: count.demanded, connections: connections[tenant] ?? 0)
                    if followed[tenant] != nil, let limit = policies.cachedQuotas(tenant)?.maxOperationsPerSecond,
                        limit < TenantPolicies.unlimited.maxOperationsPerSecond
                    {
                        limits[tenant] = limit
                    }
                }
                guard !rows.isEmpty else { continue }
                do {
                    let exchange = try await store.exchange(node: node, second: second, counts: rows)
                    lastExchange = .now
                    warned = false
                    var rates: [TenantID: ClusterRateShare.Rate] = [:]
                    for (tenant, limit) in limits {
                        rates[tenant] = ClusterRateShare.rate(
                            for: node, limit: limit, reports: exchange.reports[tenant] ?? [], members: exchange.members, latest: second,
                            since: followed[tenant]?.since ?? second)
                    }
                    policies.setOperationRates(rates)
                    usage.otherNodesConnections(exchange.otherConnections)
                } catch {
                    if !warned {
                        logger.warning("cannot exchange quota counts with the cluster", metadata: ["error": "\(error)"])
                        warned = true
                    }
                    if ContinuousClock.now - lastExchange > Self.staleAfter {
                        let count = members()
                        policies.setOperationRates(limits.mapValues { ClusterRateShare.fallback(limit: $0, members: count) })
                    }
                }
            }
        }
    }
}
