@testable import DataPlane
import Testing
import TopGunCore

@Suite struct ClusterRateShareTests {
    static let nodes = ["n1", "n2", "n3", "n4", "n5"].map(NodeID.init)

    @Test func withNoHistoryTheBudgetIsTheLimitAndSharesFollowDemand() {
        let members = Set(Self.nodes.prefix(2))
        #expect(ClusterRateShare.budget(limit: 100, reports: [], members: members, latest: 10, since: 11) == 100)
        let reports = [
            ClusterRateShare.Report(node: Self.nodes[0], second: 10, admitted: 30, demanded: 300),
            ClusterRateShare.Report(node: Self.nodes[1], second: 10, admitted: 30, demanded: 100),
        ]
        let first = ClusterRateShare.share(of: Self.nodes[0], reports: reports, members: members)
        let second = ClusterRateShare.share(of: Self.nodes[1], reports: reports, members: members)
        #expect(abs(first + second - 1) < 1e-9)
        #expect(abs(first - (0.02 + 0.96 * 0.75)) < 1e-9)
        // Idle everywhere: equal parts.
        #expect(ClusterRateShare.share(of: Self.nodes[0], reports: [], members: members) == 0.5)
    }

    @Test func aShortfallRaisesTheBudgetAndASurplusLowersItWithinBounds() {
        let members: Set = [Self.nodes[0]]
        func reports(_ admitted: Int64) -> [ClusterRateShare.Report] {
            (1...9).map { .init(node: Self.nodes[0], second: Int64($0), admitted: admitted, demanded: admitted) }
        }
        #expect(ClusterRateShare.budget(limit: 100, reports: reports(100), members: members, latest: 9, since: 0) == 100)
        #expect(ClusterRateShare.budget(limit: 100, reports: reports(0), members: members, latest: 9, since: 0) == 150)
        #expect(ClusterRateShare.budget(limit: 100, reports: reports(300), members: members, latest: 9, since: 0) == 0)
        #expect(ClusterRateShare.budget(limit: 100, reports: reports(90), members: members, latest: 9, since: 0) == 100 + ClusterRateShare.gain * 90)
        // A member whose latest second is not reported yet counts with the second before.
        var partial = reports(100)
        partial.removeLast()
        #expect(ClusterRateShare.budget(limit: 100, reports: partial, members: members, latest: 9, since: 0) == 100)
    }

    enum Demand: CaseIterable {
        /// Clients stay on their nodes and ask for more than the limit throughout (1.2–4 L).
        case steadyOverLimit
        /// As much, but the clients move between nodes every 20–40 s.
        case movingOverLimit
        /// Anything from idle to twice the limit, moving every 3–15 s.
        case erratic
    }

    /// A seeded simulation of the nodes' buckets: each second every node admits up to its rate
    /// of what its clients ask for, and reports; each node reads the others' reports of the
    /// latest second only if they happen to be written before it reads. Whatever the demand
    /// does, no 10 s window admits more than 10% over W × L. While the clients ask for more
    /// than the limit, every window admits within 10% of W × L, except those starting less
    /// than 3 s after the clients moved (their first second follows the old demand).
    @Test(arguments: 0..<300) func anyTenSecondWindowStaysWithinTenPercentOfTheLimit(seed: UInt64) {
        var random = SplitMix64(seed: 0xC0A7 &+ seed)
        let count = Int.random(in: 2...5, using: &random)
        let members = Set(Self.nodes.prefix(count))
        let limit = Int64.random(in: 20...5_000, using: &random)
        let seconds = 100
        let demandKind = Demand.allCases[Int(seed) % Demand.allCases.count]
        func placement() -> [Double] {
            var weights = (0..<count).map { _ in Double.random(in: 0...1, using: &random) < 0.3 ? 0 : Double.random(in: 0.05...1, using: &random) }
            if weights.allSatisfy({ $0 == 0 }) { weights[Int.random(in: 0..<count, using: &random)] = 1 }
            let total = weights.reduce(0, +)
            return weights.map { $0 / total }
        }
        var demand = Array(repeating: Array(repeating: 0.0, count: count), count: seconds)
        var moves: [Int] = []
        var weights = placement()
        var second = 0
        while second < seconds {
            let length: Int
            let total: Double
            switch demandKind {
            case .steadyOverLimit:
                length = Int.random(in: 3...15, using: &random)
                total = Double(limit) * Double.random(in: 1.2...4, using: &random)
            case .movingOverLimit:
                length = Int.random(in: 20...40, using: &random)
                total = Double(limit) * Double.random(in: 1.2...4, using: &random)
                if second > 0 { weights = placement(); moves.append(second) }
            case .erratic:
                length = Int.random(in: 3...15, using: &random)
                total = Double(limit) * Double.random(in: 0...2, using: &random)
                weights = placement()
            }
            for s in second..<min(seconds, second + length) {
                for node in 0..<count { demand[s][node] = total * weights[node] }
            }
            second += length
        }
        var reports: [ClusterRateShare.Report] = []
        var admittedPerSecond: [Double] = []
        for s in 0..<seconds {
            var admitted = 0.0
            var thisSecond: [ClusterRateShare.Report] = []
            for (index, node) in Self.nodes.prefix(count).enumerated() {
                // The others' reports of the latest second are there or not, by chance.
                let visible = reports.filter { $0.node == node || $0.second < Int64(s) - 1 || Bool.random(using: &random) }
                let rate = ClusterRateShare.rate(for: node, limit: limit, reports: visible, members: members, latest: Int64(s) - 1, since: 0)
                let took = min(demand[s][index], rate.perSecond).rounded(.down)
                admitted += took
                thisSecond.append(.init(node: node, second: Int64(s), admitted: Int64(took), demanded: Int64(demand[s][index].rounded(.up))))
            }
            reports += thisSecond
            // The store answers with the last 11 seconds only (and the test stays cheap: it
            // runs beside timing-sensitive tests).
            reports.removeAll { $0.second < Int64(s) - 11 }
            admittedPerSecond.append(admitted)
        }
        let window = ClusterRateShare.window
        let bound = Double(window) * Double(limit)
        for start in 0...(seconds - window) {
            let total = admittedPerSecond[start..<(start + window)].reduce(0, +)
            #expect(total <= 1.1 * bound + Double(count), "seed \(seed): window at \(start) admitted \(total) of \(bound)")
            let afterMove = moves.contains { start >= $0 - window && start < $0 + 3 }
            if demandKind != .erratic, start >= window, !afterMove {
                #expect(total >= 0.9 * bound - Double(count), "seed \(seed), \(demandKind): window at \(start) admitted \(total) of \(bound)")
            }
        }
    }
}
