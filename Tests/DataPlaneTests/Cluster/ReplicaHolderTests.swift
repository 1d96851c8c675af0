@testable import DataPlane
import Logging
import Synchronization
import Testing
import TopGunCore

/// The backup's side: which owner batches it takes, which rows it hands over, and which
/// commit watermark clears what (no network: batches are handed to it directly).
@Suite struct ReplicaHolderTests {
    static let backup = NodeID("b")
    static let owner = NodeID("o")
    static let other = NodeID("c")
    static let partition = 5

    static func row(_ name: String, version: Int64 = 1) -> StoredRecord {
        ReplicationLogTests.row(name, partition: partition, version: version)
    }

    /// A table where `partition` has `owner` under `epoch` with `backups`, everything else
    /// owned by `other`.
    static func table(version: Int64, epoch: Int64, owner: NodeID = owner, backups: [NodeID]) -> PartitionTable {
        var assignments = (0..<PartitionFunction.partitionCount).map { _ in PartitionTable.Assignment(owner: other, epoch: 1) }
        assignments[partition] = PartitionTable.Assignment(owner: owner, backups: backups, epoch: epoch)
        let members = [backup, owner, other].map { PartitionTable.Member(id: $0) }
        return PartitionTable(version: version, members: members, assignments: assignments)!
    }

    /// A holder on node `backup`, and what it hands over.
    /// What a holder handed over.
    final class HandedOver: Sendable {
        private let rows = Mutex<[StoredRecord]>([])
        func add(_ more: [StoredRecord]) { rows.withLock { $0 += more } }
        var all: [StoredRecord] { rows.withLock { $0 } }
    }

    static func holder(_ table: PartitionTable) -> (ReplicaHolder, CurrentPartitionTable, HandedOver) {
        let current = CurrentPartitionTable(localNode: backup, table: table)
        let handedOver = HandedOver()
        let holder = ReplicaHolder(
            table: current, handOver: { rows in handedOver.add(rows) }, logger: Logger(label: "test"))
        return (holder, current, handedOver)
    }

    static func batch(_ number: UInt64, epoch: Int64, rows: [StoredRecord], persistedThrough: UInt64 = 0, stream: String, completes: Bool = false) -> ReplicaBatch {
        ReplicaBatch(
            batch: number, persistedThrough: persistedThrough,
            parts: [ReplicaBatch.Part(partition: partition, epoch: epoch, rows: rows, completesSnapshot: completes)], stream: stream)
    }

    @Test func aBatchRoundTripsWithItsStream() throws {
        let batch = Self.batch(7, epoch: 3, rows: [Self.row("a")], persistedThrough: 4, stream: "run-1", completes: true)
        let decoded = try ReplicaBatch(decoding: batch.encoded())
        #expect(decoded.batch == 7 && decoded.persistedThrough == 4 && decoded.stream == "run-1")
        #expect(decoded.parts.first?.rows == [Self.row("a")] && decoded.parts.first?.completesSnapshot == true)
    }

    @Test func aWatermarkOfAnotherRunDoesNotClearRowsItNeverCommitted() async throws {
        let (holder, _, _) = Self.holder(Self.table(version: 1, epoch: 2, backups: [Self.backup]))
        // The owner's first run sends row a in its batch 117, never committed.
        try await holder.receive(Self.batch(117, epoch: 2, rows: [Self.row("a")], stream: "run-1", completes: true), from: Self.owner)
        // A later run of the same node (its numbering starts over) reports its batches up to
        // 363 committed, in a batch for another partition (none of its rows here).
        let unrelated = ReplicaBatch(batch: 364, persistedThrough: 363, parts: [], stream: "run-2")
        try await holder.receive(unrelated, from: Self.owner)
        // The promotion of this copy still writes a: it is still counted uncommitted.
        let unpersisted = await holder.uncommitted(Self.partition)
        #expect(unpersisted == [Self.row("a")])
        // The same run's watermark does clear it.
        try await holder.receive(ReplicaBatch(batch: 118, persistedThrough: 117, parts: [], stream: "run-1"), from: Self.owner)
        #expect(await holder.uncommitted(Self.partition) == [])
    }

    @Test func aBatchUnderTheKnownEpochIsRefusedUnlessTheTableNamesThisNode() async throws {
        // The table this node acts on does not name it a backup of the partition (yet).
        let (holder, current, _) = Self.holder(Self.table(version: 1, epoch: 2, backups: []))
        await #expect(throws: ClusterMessageError.self) {
            try await holder.receive(Self.batch(1, epoch: 2, rows: [Self.row("a")], stream: "s", completes: true), from: Self.owner)
        }
        #expect(await holder.uncommitted(Self.partition) == nil, "nothing kept")
        // Once it has the table naming it, the owner's retry is taken.
        current.install(Self.table(version: 2, epoch: 2, backups: [Self.backup]))
        try await holder.receive(Self.batch(1, epoch: 2, rows: [Self.row("a")], stream: "s", completes: true), from: Self.owner)
        #expect(await holder.uncommitted(Self.partition) == [Self.row("a")])
    }

    @Test func aBatchUnderANewerEpochIsTakenAndKeptThroughAnOlderTable() async throws {
        let (holder, _, handedOver) = Self.holder(Self.table(version: 1, epoch: 2, backups: []))
        // The owner is ahead: epoch 3 names this node; its table still says epoch 2.
        try await holder.receive(Self.batch(1, epoch: 3, rows: [Self.row("a")], stream: "s", completes: true), from: Self.owner)
        // The end of the older table's apply keeps the copy (a newer table decides).
        await holder.tableChanged()
        #expect(await holder.uncommitted(Self.partition) == [Self.row("a")])
        #expect(handedOver.all.isEmpty)
    }

    @Test func aTableNoLongerNamingThisNodeDropsTheCopyAndHandsItsUncommittedRowsOver() async throws {
        let (holder, current, handedOver) = Self.holder(Self.table(version: 1, epoch: 2, backups: [Self.backup]))
        try await holder.receive(Self.batch(1, epoch: 2, rows: [Self.row("a"), Self.row("b")], stream: "s", completes: true), from: Self.owner)
        try await holder.receive(Self.batch(2, epoch: 2, rows: [], persistedThrough: 1, stream: "s"), from: Self.owner)
        try await holder.receive(Self.batch(3, epoch: 2, rows: [Self.row("c")], stream: "s"), from: Self.owner)
        current.install(Self.table(version: 2, epoch: 2, backups: [Self.other]))
        await holder.tableChanged()
        #expect(await holder.uncommitted(Self.partition) == nil)
        #expect(handedOver.all == [Self.row("c")], "only what the owner never reported committed")
    }
}
