@testable import DataPlane
import Testing
import TopGunCore

/// What an owner has sent its backups and what they acknowledged, without a network.
@Suite struct ReplicationLogTests {
    static let x = NodeID("x")
    static let y = NodeID("y")
    static let z = NodeID("z")

    /// A row of `partition` (the log does not care whether the key hashes there).
    static func row(_ name: String, partition: Int, version: Int64 = 1) -> StoredRecord {
        StoredRecord(key: StorageFixtures.key(name), partition: partition,
                     value: .lww(LWWRecord(value: .int(version), timestamp: StorageFixtures.timestamp(version))), sequence: version)
    }

    // MARK: Batches

    @Test func aBatchWithoutBackupsIsReplicatedAtOnce() {
        var log = ReplicationLog()
        let batch = log.record([Self.row("a", partition: 1)]) { _ in [] }
        #expect(batch == 1)
        #expect(log.isReplicated(batch))
        #expect(log.backupsReadyToSend.isEmpty)
        #expect(log.nextSend(to: Self.x) == nil)
        let empty = log.record([]) { _ in [Self.x] }
        #expect(empty == 2)
        #expect(log.isReplicated(empty), "a batch of no rows waits for nobody")
        #expect(!log.isReplicated(3), "a batch not recorded yet is not replicated")
        #expect(log.lastBatch == 2)
    }

    @Test func eachBackupGetsTheRowsOfItsPartitionsAndTheBatchWaitsForAllOfThem() {
        var log = ReplicationLog()
        let rows = [Self.row("a", partition: 1), Self.row("b", partition: 2), Self.row("c", partition: 3)]
        let batch = log.record(rows) { partition in
            switch partition {
            case 1: [Self.x, Self.y]
            case 2: [Self.y]
            default: []
            }
        }
        #expect(!log.isReplicated(batch))
        #expect(log.backupsReadyToSend == [Self.x, Self.y])
        let toX = log.nextSend(to: Self.x)
        let toY = log.nextSend(to: Self.y)
        #expect(toX?.rows == [rows[0]])
        #expect(toX?.through == batch)
        #expect(toY?.rows == [rows[0], rows[1]])
        #expect(toY?.completesSnapshots.isEmpty == true)
        #expect(log.nextSend(to: Self.z) == nil, "nothing for a node that backs up nothing")
        #expect(log.acknowledged(Self.x, through: batch) == [], "y has not acknowledged")
        #expect(!log.isReplicated(batch))
        #expect(log.acknowledged(Self.y, through: batch) == [batch])
        #expect(log.isReplicated(batch))
        #expect(log.acknowledged == [Self.x: batch, Self.y: batch])
        // A repeated acknowledgement changes nothing.
        #expect(log.acknowledged(Self.y, through: batch) == [])
    }

    @Test func rowsWaitingForABackupAreCoalescedIntoOneSend() {
        var log = ReplicationLog()
        let first = log.record([Self.row("a", partition: 1)]) { _ in [Self.x] }
        let second = log.record([Self.row("b", partition: 2), Self.row("a", partition: 1, version: 2)]) { _ in [Self.x] }
        let send = log.nextSend(to: Self.x)
        #expect(send?.through == second)
        #expect(send?.rows == [Self.row("a", partition: 1), Self.row("b", partition: 2), Self.row("a", partition: 1, version: 2)],
                "in the order they changed")
        #expect(log.nextSend(to: Self.x) == nil, "everything went in one send")
        #expect(log.acknowledged(Self.x, through: second) == [first, second])
        #expect(log.isReplicated(first) && log.isReplicated(second))
    }

    @Test func oneSendIsInFlightPerBackup() {
        var log = ReplicationLog()
        let first = log.record([Self.row("a", partition: 1)]) { _ in [Self.x, Self.y] }
        #expect(log.nextSend(to: Self.x)?.through == first)
        let second = log.record([Self.row("b", partition: 1)]) { _ in [Self.x, Self.y] }
        #expect(log.nextSend(to: Self.x) == nil, "x's first send is under way")
        #expect(log.backupsReadyToSend == [Self.y])
        // y's send takes both batches at once.
        #expect(log.nextSend(to: Self.y)?.through == second)
        #expect(log.backupsReadyToSend.isEmpty)
        // An acknowledgement of an older send does not end the one under way.
        #expect(log.acknowledged(Self.x, through: first) == [])
        let toX = log.nextSend(to: Self.x)
        #expect(toX?.rows == [Self.row("b", partition: 1)])
        #expect(toX?.through == second)
        #expect(log.nextSend(to: Self.x) == nil)
        #expect(log.acknowledged(Self.y, through: second) == [first])
        #expect(log.acknowledged(Self.x, through: second) == [second])
    }

    @Test func anAcknowledgementOfAnOlderBatchDoesNotEndTheSendUnderWay() {
        var log = ReplicationLog()
        _ = log.record([Self.row("a", partition: 1)]) { _ in [Self.x] }
        _ = log.nextSend(to: Self.x)
        _ = log.acknowledged(Self.x, through: 1)
        let second = log.record([Self.row("b", partition: 1)]) { _ in [Self.x] }
        #expect(log.nextSend(to: Self.x)?.through == second)
        let third = log.record([Self.row("c", partition: 1)]) { _ in [Self.x] }
        // A late duplicate of the first acknowledgement.
        #expect(log.acknowledged(Self.x, through: 1) == [])
        #expect(log.nextSend(to: Self.x) == nil, "the send through \(second) is still under way")
        #expect(log.acknowledged(Self.x, through: second) == [second])
        #expect(log.nextSend(to: Self.x)?.through == third)
        #expect(log.acknowledged[Self.x] == second)
    }

    @Test func aFailedSendGoesBackInFrontOfWhatArrivedMeanwhile() {
        var log = ReplicationLog()
        let first = log.record([Self.row("a", partition: 1)]) { _ in [Self.x] }
        guard let send = log.nextSend(to: Self.x) else { Issue.record("no send"); return }
        let second = log.record([Self.row("b", partition: 2)]) { _ in [Self.x] }
        log.sendFailed(Self.x, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
        #expect(log.backupsReadyToSend == [Self.x])
        let retry = log.nextSend(to: Self.x)
        #expect(retry?.rows == [Self.row("a", partition: 1), Self.row("b", partition: 2)])
        #expect(retry?.through == second)
        #expect(!log.isReplicated(first))
        #expect(log.acknowledged(Self.x, through: second) == [first, second])
    }

    @Test func aFailedSendAloneIsSentAgainWithItsSnapshotMarks() {
        var log = ReplicationLog()
        let batch = log.recordSnapshot([Self.row("a", partition: 7)], partition: 7, for: Self.x)
        guard let send = log.nextSend(to: Self.x) else { Issue.record("no send"); return }
        log.sendFailed(Self.x, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
        let retry = log.nextSend(to: Self.x)
        #expect(retry?.through == batch)
        #expect(retry?.rows == [Self.row("a", partition: 7)])
        #expect(retry?.completesSnapshots == [7])
    }

    @Test func forgettingABackupReleasesTheBatchesWaitingForIt() {
        var log = ReplicationLog()
        let first = log.record([Self.row("a", partition: 1)]) { _ in [Self.x, Self.y] }
        let second = log.record([Self.row("b", partition: 2)]) { _ in [Self.x] }
        let third = log.record([Self.row("c", partition: 3)]) { _ in [Self.y] }
        _ = log.nextSend(to: Self.y)
        #expect(log.acknowledged(Self.y, through: third) == [third])
        _ = log.nextSend(to: Self.x)
        #expect(log.forget(Self.x) == [first, second])
        #expect(log.isReplicated(first), "y acknowledged it")
        #expect(!log.isReplicated(second) && log.isUnreplicated(second), "its only backup left before acknowledging it")
        #expect(!log.isUnreplicated(first) && !log.isUnreplicated(third))
        #expect(log.backupsReadyToSend.isEmpty)
        #expect(log.nextSend(to: Self.x) == nil, "nothing is kept for a forgotten backup")
        #expect(log.acknowledged[Self.x] == nil)
        #expect(log.forget(Self.x) == [], "forgetting twice changes nothing")
        // Named again later: it starts afresh (its in-flight send no longer blocks it).
        let fourth = log.record([Self.row("d", partition: 1)]) { _ in [Self.x] }
        #expect(log.nextSend(to: Self.x)?.rows == [Self.row("d", partition: 1)])
        #expect(log.acknowledged(Self.x, through: fourth) == [fourth])
    }

    @Test func forgettingOneOfTwoBackupsLeavesTheBatchWaitingForTheOther() {
        var log = ReplicationLog()
        let batch = log.record([Self.row("a", partition: 1)]) { _ in [Self.x, Self.y] }
        #expect(log.forget(Self.x) == [])
        #expect(!log.isReplicated(batch))
        _ = log.nextSend(to: Self.y)
        #expect(log.acknowledged(Self.y, through: batch) == [batch])
    }

    /// A send still under way when its backup was forgotten may fail afterwards: its rows are
    /// for a node that is no longer a backup, and nothing waits for them.
    @Test func aSendFailingAfterItsBackupWasForgottenIsNotQueuedAgain() {
        var log = ReplicationLog()
        _ = log.record([Self.row("a", partition: 1)]) { _ in [Self.x] }
        guard let send = log.nextSend(to: Self.x) else { Issue.record("no send"); return }
        _ = log.forget(Self.x)
        log.sendFailed(Self.x, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
        #expect(log.backupsReadyToSend.isEmpty, "rows re-queued for a forgotten backup would be retried forever")
        #expect(log.nextSend(to: Self.x) == nil)
    }

    // MARK: Snapshots

    @Test func aSnapshotIsQueuedForItsBackupAndMarksItsPartitionComplete() {
        var log = ReplicationLog()
        let change = log.record([Self.row("a", partition: 7)]) { _ in [Self.x] }
        let snapshot = log.recordSnapshot([Self.row("a", partition: 7), Self.row("b", partition: 7)], partition: 7, for: Self.y)
        let other = log.recordSnapshot([Self.row("c", partition: 8)], partition: 8, for: Self.x)
        #expect(snapshot == change + 1 && other == snapshot + 1)
        #expect(log.backupsReadyToSend == [Self.x, Self.y])
        let toY = log.nextSend(to: Self.y)
        #expect(toY?.rows == [Self.row("a", partition: 7), Self.row("b", partition: 7)])
        #expect(toY?.completesSnapshots == [7])
        #expect(toY?.through == snapshot)
        // x's change and its snapshot of another partition travel together, in order.
        let toX = log.nextSend(to: Self.x)
        #expect(toX?.rows == [Self.row("a", partition: 7), Self.row("c", partition: 8)])
        #expect(toX?.completesSnapshots == [8])
        #expect(toX?.through == other)
        #expect(!log.isReplicated(snapshot))
        #expect(log.acknowledged(Self.y, through: snapshot) == [snapshot], "a snapshot waits only for its backup")
        #expect(log.acknowledged(Self.x, through: other) == [change, other])
    }

    @Test func anEmptySnapshotStillMarksThePartitionComplete() {
        var log = ReplicationLog()
        let batch = log.recordSnapshot([], partition: 3, for: Self.x)
        let send = log.nextSend(to: Self.x)
        #expect(send?.rows == [])
        #expect(send?.completesSnapshots == [3])
        #expect(log.acknowledged(Self.x, through: batch) == [batch])
    }

    // MARK: A model check

    /// Random changes, snapshots, sends that succeed or fail in any order, and backups
    /// forgotten: at most one send per backup is under way; a backup receives its rows in the
    /// order they were recorded, each once (a failed send's rows again, in front); a batch is
    /// reported replicated exactly once, and only once each backup it was meant for has
    /// received all its rows or was forgotten; and once the sends succeed, every batch is.
    @Test(arguments: 0..<40)
    func batchesAreReplicatedOnlyOnceEveryBackupHasTheirRows(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let backups = [Self.x, Self.y, Self.z]
        var log = ReplicationLog()
        /// Per backup: (batch, row) recorded for it since it was last forgotten, and how many
        /// of them it has received.
        var expected: [NodeID: [(batch: UInt64, row: StoredRecord)]] = [:]
        var received: [NodeID: Int] = [:]
        var inFlight: [NodeID: (through: UInt64, rows: [StoredRecord], completesSnapshots: Set<Int>)] = [:]
        /// Per batch: the backups it still needs (the model), and whether it was reported.
        var pending: [UInt64: Set<NodeID>] = [:]
        /// Batches meant for some backup, and those some backup received whole (the model).
        var targeted = Set<UInt64>()
        var reachedOne = Set<UInt64>()
        var reported = Set<UInt64>()
        var version: Int64 = 0

        func report(_ batches: [UInt64], _ what: String) {
            for batch in batches {
                #expect(!reported.contains(batch), "seed \(seed): batch \(batch) reported twice (\(what))")
                #expect(pending[batch]?.isEmpty ?? true, "seed \(seed): batch \(batch) reported while \(pending[batch] ?? []) lack its rows (\(what))")
                reported.insert(batch)
                // Replicated once a backup got it (or it was meant for none); otherwise every
                // backup left before getting it, and it is not replicated anywhere.
                if reachedOne.contains(batch) || !targeted.contains(batch) {
                    #expect(log.isReplicated(batch) && !log.isUnreplicated(batch), "seed \(seed): batch \(batch) reached a backup (\(what))")
                } else {
                    #expect(log.isUnreplicated(batch) && !log.isReplicated(batch), "seed \(seed): batch \(batch) reached no backup (\(what))")
                }
            }
        }

        func deliver(_ backup: NodeID, succeed: Bool) {
            guard let send = inFlight.removeValue(forKey: backup) else { return }
            guard succeed else {
                log.sendFailed(backup, through: send.through, rows: send.rows, completesSnapshots: send.completesSnapshots)
                return
            }
            // The rows arrive in order, continuing exactly where the last send stopped.
            let list = expected[backup] ?? []
            let start = received[backup] ?? 0
            let end = min(list.count, start + send.rows.count)
            let arrived = list[start..<end].map(\.row)
            #expect(arrived == send.rows, "seed \(seed): \(backup) got \(send.rows.count) rows, not the \(arrived.count) next in order")
            #expect(list[start..<end].allSatisfy { $0.batch <= send.through }, "seed \(seed): a send through \(send.through) with a later row")
            received[backup] = end
            // A batch has reached the backup once all its rows for it have.
            let notYet = Set(list[end...].map(\.batch))
            for (batch, _) in list[..<end] where !notYet.contains(batch) {
                pending[batch]?.remove(backup)
                reachedOne.insert(batch)
            }
            report(log.acknowledged(backup, through: send.through), "ack of \(backup)")
        }

        for _ in 0..<200 {
            switch random.next() % 7 {
            case 0, 1:
                let rows = (0..<Int(random.next() % 4)).map { _ in
                    version += 1
                    return Self.row("k\(random.next() % 5)", partition: Int(random.next() % 4), version: version)
                }
                let map = (0..<4).map { _ in backups.filter { _ in random.next() % 2 == 0 } }
                let batch = log.record(rows) { map[$0] }
                var targets = Set<NodeID>()
                for row in rows {
                    for backup in map[row.partition] {
                        expected[backup, default: []].append((batch, row))
                        targets.insert(backup)
                    }
                }
                pending[batch] = targets
                if targets.isEmpty { report([batch], "record") } else { targeted.insert(batch) }
            case 2:
                let backup = backups[Int(random.next() % 3)]
                version += 1
                let rows = (0...Int(random.next() % 3)).map { _ in Self.row("s\(random.next() % 5)", partition: 9, version: version) }
                let batch = log.recordSnapshot(rows, partition: 9, for: backup)
                for row in rows { expected[backup, default: []].append((batch, row)) }
                pending[batch] = [backup]
                targeted.insert(batch)
            case 3, 4:
                for backup in log.backupsReadyToSend {
                    #expect(inFlight[backup] == nil, "seed \(seed): \(backup) listed while a send is under way")
                }
                for backup in backups {
                    let send = log.nextSend(to: backup)
                    if inFlight[backup] != nil { #expect(send == nil, "seed \(seed): two sends under way to \(backup)") }
                    if let send { inFlight[backup] = send }
                }
            case 5:
                let backup = backups[Int(random.next() % 3)]
                deliver(backup, succeed: random.next() % 3 != 0)
            default:
                guard random.next() % 4 == 0 else { continue }
                let backup = backups[Int(random.next() % 3)]
                // Its send under way is abandoned (the Replicator no longer cares).
                inFlight[backup] = nil
                expected[backup] = nil
                received[backup] = nil
                for batch in pending.keys { pending[batch]?.remove(backup) }
                report(log.forget(backup), "forget \(backup)")
            }
        }
        // Everything now succeeds.
        for _ in 0..<10 {
            for backup in backups {
                deliver(backup, succeed: true)
                if let send = log.nextSend(to: backup) { inFlight[backup] = send }
                deliver(backup, succeed: true)
            }
        }
        for batch in 1...max(1, log.lastBatch) where log.lastBatch > 0 {
            #expect(log.isReplicated(batch) != log.isUnreplicated(batch), "seed \(seed): batch \(batch) never settled")
            #expect(reported.contains(batch), "seed \(seed): batch \(batch) never reported")
        }
    }
}
