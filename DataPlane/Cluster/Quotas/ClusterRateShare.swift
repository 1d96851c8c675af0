import TopGunCore

/// How much of a tenant's operations per second one node of a cluster admits in the coming
/// second, so that the whole cluster admits about the tenant's limit L over any 10 s
/// (issue 15), whichever nodes its clients use. Pure: the counts go in, a rate comes out.
///
/// Every node reports, once a second, how many of the tenant's operations it admitted and how
/// many its clients asked for (`Report`, in `cluster_tenant_seconds`), and reads the others'.
/// From the cluster's admissions over the last seconds it computes a **budget** for the next
/// second: L, corrected by part (`gain`) of what the cluster admitted below or above L over
/// those seconds, at most `maxBudget` × L. The correction makes up for what the shares got
/// wrong (stale reports, demand moving between nodes, clients that paused): over a window the
/// cluster's total comes back to W × L. The node's **share** of the budget follows the demand
/// each node reported (a floor of `minimumShare` each, so that a node whose clients just
/// arrived is not starved for a second).
///
/// Reports of the latest second may not be in yet when a node reads (they are written at
/// about the same moment): a node missing there counts with its admissions of the second
/// before. The constants are checked by a seeded simulation (`ClusterRateShareTests`).
struct ClusterRateShare {
    /// One node's count of a tenant's operations in one (wall-clock) second.
    struct Report: Sendable, Hashable {
        var node: NodeID
        var second: Int64
        var admitted: Int64
        var demanded: Int64
    }

    /// What a node's local bucket is given: tokens per second and the most it holds.
    struct Rate: Sendable, Equatable {
        var perSecond: Double
        var capacity: Double
    }

    /// The window the limit holds over, in seconds.
    static let window = 10
    /// How much of the cluster's surplus or shortfall over the window is corrected per second.
    static let gain = 0.5
    static let maxBudget = 1.5
    static let minimumShare = 0.02
    /// A node's bucket holds a quarter of a second of its rate (at least one operation).
    static let burstSeconds = 0.25

    /// The cluster's budget for the second after `latest`: `reports` of every live member
    /// (this node's own included) for seconds up to `latest`, counted from `since` (when this
    /// node started following the tenant: earlier seconds are unknown, not idle).
    static func budget(limit: Int64, reports: [Report], members: Set<NodeID>, latest: Int64, since: Int64) -> Double {
        let limit = Double(limit)
        let first = max(latest - Int64(window) + 2, since)
        guard first <= latest else { return limit }
        var admitted: [NodeID: [Int64: Int64]] = [:]
        for report in reports where members.contains(report.node) && report.second >= first - 1 && report.second <= latest {
            admitted[report.node, default: [:]][report.second] = report.admitted
        }
        var total = 0.0
        for second in first...latest {
            for node in members {
                if let count = admitted[node]?[second] {
                    total += Double(count)
                } else if second == latest, let before = admitted[node]?[second - 1] {
                    // Not reported yet: about what it admitted the second before.
                    total += Double(before)
                }
            }
        }
        let deficit = Double(latest - first + 1) * limit - total
        return min(max(limit + gain * deficit, 0), maxBudget * limit)
    }

    /// `node`'s part of the budget, from each live member's latest reported demand.
    static func share(of node: NodeID, reports: [Report], members: Set<NodeID>) -> Double {
        let count = Double(max(members.count, 1))
        var latest: [NodeID: Report] = [:]
        for report in reports where members.contains(report.node) {
            if let known = latest[report.node], known.second >= report.second { continue }
            latest[report.node] = report
        }
        let total = latest.values.reduce(0.0) { $0 + Double($1.demanded) }
        guard total > 0 else { return 1 / count }
        let floor = min(minimumShare, 1 / count)
        return floor + (1 - count * floor) * Double(latest[node]?.demanded ?? 0) / total
    }

    /// The rate of `node`'s bucket for the second after `latest`.
    static func rate(for node: NodeID, limit: Int64, reports: [Report], members: Set<NodeID>, latest: Int64, since: Int64) -> Rate {
        let members = members.union([node])
        let perSecond = budget(limit: limit, reports: reports, members: members, latest: latest, since: since)
            * share(of: node, reports: reports, members: members)
        return Rate(perSecond: perSecond, capacity: max(1, perSecond * burstSeconds))
    }

    /// A node that has not heard from the others for a while: an equal part of the limit.
    static func fallback(limit: Int64, members: Int) -> Rate {
        let perSecond = Double(limit) / Double(max(members, 1))
        return Rate(perSecond: perSecond, capacity: max(1, perSecond * burstSeconds))
    }
}
