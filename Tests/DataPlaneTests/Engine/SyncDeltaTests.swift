@testable import DataPlane
import Testing
import TopGunCore

@Suite struct SyncDeltaTests {
    static func changes(seed: UInt64) -> [SyncDelta.Change] {
        var random = SplitMix64(seed: seed)
        var sequence: Int64 = 0
        return (0..<Int.random(in: 1..<200, using: &random)).map { index in
            sequence += Int64.random(in: 1...3, using: &random)
            let value: DataValue? = Bool.random(using: &random) ? .string(String(repeating: "x", count: Int.random(in: 0..<80, using: &random))) : nil
            return SyncDelta.Change(
                partition: Int.random(in: 0..<PartitionFunction.partitionCount, using: &random), sequence: sequence, key: "k\(index)",
                record: LWWRecord(value: value, timestamp: Timestamp(millis: sequence, counter: 0, nodeId: "n")))
        }
    }

    /// A client polling a cluster (each poll merging the owners' deltas, each owner holding
    /// some partitions) gets every change exactly once, each partition's in the order they
    /// were made, each poll within the budget (or a single change), and a poll comes back
    /// empty only once nothing is left.
    @Test(arguments: 0..<100) func pollingOwnersGivesEveryChangeOnceInOrder(seed: UInt64) {
        var random = SplitMix64(seed: seed ^ 0xD1B5)
        let all = Self.changes(seed: seed)
        let owners = Int.random(in: 1...4, using: &random)
        let ownerOf = (0..<PartitionFunction.partitionCount).map { _ in Int.random(in: 0..<owners, using: &random) }
        let budget = Int.random(in: 1...3_000, using: &random)
        func newer(_ position: SyncPosition, _ changes: [SyncDelta.Change]) -> [SyncDelta.Change] {
            changes.filter { position.isNew(partition: $0.partition, sequence: $0.sequence, timestamp: $0.record.timestamp) }
        }
        var position = SyncPosition.start
        var received: [SyncDelta.Change] = []
        for _ in 0..<400 {
            let parts = (0..<owners).map { owner in
                SyncDelta.cut(newer(position, all.filter { ownerOf[$0.partition] == owner }), largest: [:], maxBytes: budget)
            }
            let merged = SyncDelta.merge(parts, after: position, maxBytes: budget)
            #expect(merged.changes.count <= 1 || merged.changes.reduce(0) { $0 + $1.cost } <= budget, "seed \(seed)")
            if merged.changes.isEmpty {
                #expect(newer(position, all).isEmpty, "an empty poll while changes remain, seed \(seed)")
                break
            }
            received += merged.changes
            position = merged.next
        }
        #expect(received.map(\.key).sorted() == all.map(\.key).sorted(), "every change exactly once, seed \(seed)")
        for partition in Set(all.map(\.partition)) {
            let order = received.filter { $0.partition == partition }.map(\.sequence)
            #expect(order == order.sorted(), "partition \(partition) in order, seed \(seed)")
        }
    }

    @Test func aLegacyPositionLeavesOnlyPartitionsLookedAtBeforeEveryCut() {
        let legacy = SyncPosition(timestamp: Timestamp(millis: 5, counter: 0, nodeId: "old"))
        let change = { (partition: Int, sequence: Int64) in
            SyncDelta.Change(partition: partition, sequence: sequence, key: "p\(partition)s\(sequence)",
                record: LWWRecord(value: .int(1), timestamp: Timestamp(millis: 10, counter: 0, nodeId: "n")))
        }
        // Owner A was cut at partition 7; owner B looked at everything.
        let a = SyncDelta(changes: [change(3, 1)], cutAt: 7, largest: [3: 4, 7: 9])
        let b = SyncDelta(changes: [change(5, 2)], cutAt: nil, largest: [5: 6, 9: 1])
        let merged = SyncDelta.merge([a, b], after: legacy, maxBytes: .max)
        #expect(merged.changes.map(\.key) == ["p3s1", "p5s2"])
        #expect(merged.next.legacyTimestamp == nil)
        #expect(merged.next.sent == [3: 4, 5: 6])
    }
}
