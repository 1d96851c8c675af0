/// A positive-negative counter (protocol.md §6.6.8): per-node totals of increments and
/// decrements, merged by taking the maximum per node, so merges commute and repeat safely.
public struct PNCounter: Sendable, Hashable {
    public private(set) var positive: [String: Double]
    public private(set) var negative: [String: Double]

    public init(positive: [String: Double] = [:], negative: [String: Double] = [:]) {
        self.positive = positive
        self.negative = negative
    }

    /// Σ positive − Σ negative.
    public var value: Double {
        positive.values.reduce(0, +) - negative.values.reduce(0, +)
    }

    /// Adds `amount` (negative amounts decrement) on behalf of `nodeId`.
    public mutating func add(_ amount: Double, nodeId: String) {
        if amount >= 0 {
            positive[nodeId, default: 0] += amount
        } else {
            negative[nodeId, default: 0] += -amount
        }
    }

    /// Max-merge per node; returns whether anything changed.
    @discardableResult
    public mutating func merge(_ other: PNCounter) -> Bool {
        var changed = false
        for (node, count) in other.positive where count > (positive[node] ?? -.infinity) {
            positive[node] = count
            changed = true
        }
        for (node, count) in other.negative where count > (negative[node] ?? -.infinity) {
            negative[node] = count
            changed = true
        }
        return changed
    }
}
