import TopGunCore
import TopGunWire

/// An HTTP sync delta (protocol.md §7.1) as one node holds it, and the merge of several
/// nodes' into the answer a client gets (pure).
///
/// Positions are per partition (`SyncPosition`), and a partition's changes are numbered by the
/// one node that owns it, so a cluster's delta is the union of its owners': each owner lists
/// its partitions' changes after the position, in (partition, sequence) order, cut at the byte
/// budget; the merge takes them in that order and cuts at the budget again. A partition is
/// never advanced past a change that was not sent, so whatever a cut leaves out comes next time.
public struct SyncDelta: Sendable {
    public struct Change: Sendable {
        public var partition: Int
        public var sequence: Int64
        public var key: String
        public var record: LWWRecord

        public init(partition: Int, sequence: Int64, key: String, record: LWWRecord) {
            self.partition = partition
            self.sequence = sequence
            self.key = key
            self.record = record
        }

        /// What the change adds to a response, the unit budgets count in.
        var cost: Int { 64 + MessagePackWriter.stringSize(key) + (record.value.map(MessagePackWriter.encodedSize(of:)) ?? 1) }
    }

    /// The changes after the position, in (partition, sequence) order.
    public var changes: [Change]
    /// The first partition whose changes were cut short by the budget (nil: none were).
    public var cutAt: Int?
    /// For a legacy position: each partition's largest sequence (every change in it was looked at).
    public var largest: [Int: Int64]

    public init(changes: [Change], cutAt: Int?, largest: [Int: Int64]) {
        self.changes = changes
        self.cutAt = cutAt
        self.largest = largest
    }

    /// One node's delta: its changes after `position`, sorted and cut at `maxBytes` (at least one).
    public static func cut(_ candidates: [Change], largest: [Int: Int64], maxBytes: Int) -> SyncDelta {
        let sorted = candidates.sorted { ($0.partition, $0.sequence) < ($1.partition, $1.sequence) }
        var bytes = 0
        for (index, change) in sorted.enumerated() {
            bytes += change.cost
            if bytes > maxBytes, index > 0 {
                return SyncDelta(changes: Array(sorted[..<index]), cutAt: change.partition, largest: largest)
            }
        }
        return SyncDelta(changes: sorted, cutAt: nil, largest: largest)
    }

    /// Several owners' deltas (their partitions disjoint) as one answer: the changes to send,
    /// at most `maxBytes` of them (at least one), and the position once they are sent.
    public static func merge(_ parts: [SyncDelta], after position: SyncPosition, maxBytes: Int) -> (changes: [Change], next: SyncPosition) {
        var largest: [Int: Int64] = [:]
        for part in parts { largest.merge(part.largest) { max($0, $1) } }
        let merged = cut(parts.flatMap(\.changes), largest: largest, maxBytes: maxBytes)
        var next = position
        for change in merged.changes { next.advance(partition: change.partition, to: change.sequence) }
        if position.legacyTimestamp != nil {
            // Partitions wholly looked at, before every cut: their older records are the client's already.
            let cut = ([merged.cutAt] + parts.map(\.cutAt)).compactMap { $0 }.min() ?? .max
            next.leaveLegacy(largestSequences: largest.filter { $0.key < cut })
        }
        return (merged.changes, next)
    }
}
