import Synchronization
import TopGunCore

/// The order in which this node changed each partition's records: every change of a record
/// gets the next sequence of its partition, stored with the record. `POST /sync` returns the
/// records changed after a client's last position by this order, not by the timestamps
/// clients put on records (a client's clock may be ahead, and a write stamped before the
/// last poll may arrive after it).
///
/// A sequence is hybrid, like an HLC: `max(last + 1, now << 12)` (milliseconds, with 4,096
/// changes per millisecond before it runs ahead of the clock). So it only grows: across a
/// restart (sequences handed out but not yet stored are below the clock's next value), and
/// on the node that loads the partition next, which continues after the largest it finds.
public final class PartitionSequences: Sendable {
    /// Bits below the milliseconds.
    public static let counterBits: Int64 = 12

    private final class Counter: Sendable {
        let last = Atomic<Int64>(0)
    }

    private let counters: [Counter]

    public init() {
        counters = (0..<PartitionFunction.partitionCount).map { _ in Counter() }
    }

    /// The next sequence of `partition`.
    public func next(partition: Int, nowMillis: Int64) -> Int64 {
        let floor = max(0, nowMillis) << Self.counterBits
        let counter = counters[partition]
        var current = counter.last.load(ordering: .relaxed)
        while true {
            let next = max(current + 1, floor)
            let (exchanged, original) = counter.last.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return next }
            current = original
        }
    }

    /// A sequence found in storage: later ones are larger.
    public func observe(partition: Int, sequence: Int64) {
        let counter = counters[partition]
        var current = counter.last.load(ordering: .relaxed)
        while current < sequence {
            let (exchanged, original) = counter.last.compareExchange(expected: current, desired: sequence, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// The latest sequence handed out (or observed) for `partition`.
    public func current(partition: Int) -> Int64 {
        counters[partition].last.load(ordering: .relaxed)
    }
}
