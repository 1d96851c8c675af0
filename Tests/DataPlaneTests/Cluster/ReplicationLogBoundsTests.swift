@testable import DataPlane
import Testing
import TopGunCore

/// A send to a backup is one cluster frame: it carries whole batches up to a bound, and a
/// snapshot goes in batches of its own, so a backup that fell behind (or a partition of a
/// million rows) catches up in bounded steps instead of one message no frame can hold.
@Suite struct ReplicationLogBoundsTests {
    static let x = NodeID("x")

    static func rows(_ count: Int, partition: Int, prefix: String) -> [StoredRecord] {
        (0..<count).map { ReplicationLogTests.row("\(prefix)\($0)", partition: partition) }
    }

    @Test func sendsCarryAtMostTheBoundInWholeBatches() {
        var log = ReplicationLog()
        var batches: [UInt64] = []
        for index in 0..<10 { batches.append(log.record(Self.rows(1_500, partition: 1, prefix: "b\(index)-")) { _ in [Self.x] }) }
        var sent = 0
        var lastThrough: UInt64 = 0
        while let send = log.nextSend(to: Self.x) {
            #expect(send.rows.count <= ReplicationLog.maxRowsPerSend)
            #expect(send.rows.count % 1_500 == 0, "whole batches only")
            #expect(send.through > lastThrough)
            // Batches up to the send's are replicated once it is acknowledged, the rest not.
            let done = log.acknowledged(Self.x, through: send.through)
            #expect(done == batches.filter { $0 > lastThrough && $0 <= send.through })
            #expect(batches.filter { $0 > send.through }.allSatisfy { !log.isReplicated($0) })
            lastThrough = send.through
            sent += send.rows.count
        }
        #expect(sent == 15_000)
        #expect(batches.allSatisfy(log.isReplicated))
    }

    @Test func aBatchLargerThanTheBoundStillGoesAlone() {
        var log = ReplicationLog()
        let big = log.record(Self.rows(ReplicationLog.maxRowsPerSend + 10, partition: 1, prefix: "k")) { _ in [Self.x] }
        let small = log.record(Self.rows(5, partition: 1, prefix: "s")) { _ in [Self.x] }
        let first = log.nextSend(to: Self.x)
        #expect(first?.through == big)
        #expect(first?.rows.count == ReplicationLog.maxRowsPerSend + 10)
        _ = log.acknowledged(Self.x, through: big)
        #expect(log.nextSend(to: Self.x)?.through == small)
    }

    @Test func aSnapshotGoesInBatchesAndOnlyItsLastCompletesIt() {
        var log = ReplicationLog()
        let rows = Self.rows(ReplicationLog.snapshotRowsPerBatch * 3 + 1, partition: 7, prefix: "snap")
        let completing = log.recordSnapshot(rows, partition: 7, for: Self.x)
        #expect(completing == 4)
        var received = 0
        var completedAt: UInt64?
        while let send = log.nextSend(to: Self.x) {
            received += send.rows.count
            if send.completesSnapshots.contains(7) { completedAt = send.through }
            #expect(send.completesSnapshots.isEmpty || send.through == completing, "only the send with the last batch completes it")
            _ = log.acknowledged(Self.x, through: send.through)
        }
        #expect(received == rows.count)
        #expect(completedAt == completing)
        #expect(log.isReplicated(completing))
    }

    @Test func anEmptySnapshotStillCompletes() {
        var log = ReplicationLog()
        let completing = log.recordSnapshot([], partition: 3, for: Self.x)
        let send = log.nextSend(to: Self.x)
        #expect(send?.through == completing)
        #expect(send?.completesSnapshots == [3])
        #expect(send?.rows.isEmpty == true)
    }

    @Test func aFailedSendComesBackFirstWhole() {
        var log = ReplicationLog()
        let first = log.record(Self.rows(3_000, partition: 1, prefix: "a")) { _ in [Self.x] }
        let second = log.record(Self.rows(3_000, partition: 1, prefix: "b")) { _ in [Self.x] }
        guard let send = log.nextSend(to: Self.x) else { Issue.record("nothing to send"); return }
        #expect(send.through == first)
        log.sendFailed(Self.x, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
        let again = log.nextSend(to: Self.x)
        #expect(again?.through == first)
        #expect(again?.rows.count == 3_000)
        _ = log.acknowledged(Self.x, through: first)
        #expect(log.nextSend(to: Self.x)?.through == second)
    }
}
