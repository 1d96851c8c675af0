@testable import DataPlane
import Testing
import TopGunCore

/// The CRDT merge of two states of one row, and the copies a backup keeps with it.
@Suite struct BackupReplicasTests {
    // MARK: Random states

    /// The state after merging `b` into `a` (`merging` says nil when `b` adds nothing).
    static func merge(_ a: StoredValue, _ b: StoredValue) -> StoredValue { a.merging(b) ?? a }

    /// An LWW record. A timestamp names one write, so its value and TTL follow from it.
    static func lww(_ random: inout SplitMix64) -> StoredValue {
        let timestamp = Timestamp(millis: Int64(random.next() % 4), counter: Int64(random.next() % 3), nodeId: ["a", "b"][Int(random.next() % 2)])
        let seed = timestamp.millis * 10 + timestamp.counter + (timestamp.nodeId == "a" ? 0 : 100)
        let value: DataValue? = seed % 4 == 0 ? nil : .int(seed)
        return .lww(LWWRecord(value: value, timestamp: timestamp, ttlMs: seed % 3 == 0 ? Double(seed) : nil))
    }

    /// The record an add with `tag` made (a tag names one add).
    static func orRecord(_ tag: Int) -> ORMapRecord {
        ORMapRecord(value: .int(Int64(tag * 7)), timestamp: Timestamp(millis: Int64(tag % 5), counter: Int64(tag), nodeId: "n\(tag % 3)"),
                    tag: "\(tag % 5):\(tag):n\(tag % 3)", ttlMs: tag % 4 == 0 ? 1_000 : nil)
    }

    /// An OR-Map key's state: some adds, some removes, in any order, possibly repeated, and
    /// possibly not canonical (a record whose tag is also a tombstone).
    static func orMap(_ random: inout SplitMix64) -> StoredValue {
        var records = (0..<8).filter { _ in random.next() % 3 == 0 }.map(orRecord)
        if random.next() % 4 == 0, let first = records.first { records.append(first) }
        records.shuffle(using: &random)
        let tombstones = (0..<8).filter { _ in random.next() % 4 == 0 }.map { orRecord($0).tag }.shuffled(using: &random)
        return .orMap(ORMapEntry(key: "k", records: records, tombstones: tombstones))
    }

    static func counter(_ random: inout SplitMix64) -> StoredValue {
        var positive: [String: Double] = [:]
        var negative: [String: Double] = [:]
        for node in ["n1", "n2", "n3"] {
            if random.next() % 2 == 0 { positive[node] = Double(random.next() % 6) }
            if random.next() % 3 == 0 { negative[node] = Double(random.next() % 6) / 2 }
        }
        return .counter(PNCounter(positive: positive, negative: negative))
    }

    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case lww, orMap, counter
        var testDescription: String { rawValue }

        func make(_ random: inout SplitMix64) -> StoredValue {
            switch self {
            case .lww: BackupReplicasTests.lww(&random)
            case .orMap: BackupReplicasTests.orMap(&random)
            case .counter: BackupReplicasTests.counter(&random)
            }
        }
    }

    /// The state merged into itself: the canonical form (for an OR-Map, records by tag without
    /// removed ones, tombstones sorted).
    static func canonical(_ value: StoredValue) -> StoredValue { merge(value, value) }

    // MARK: Merge properties

    @Test(arguments: Kind.allCases)
    func mergeIsCommutative(_ kind: Kind) {
        var random = SplitMix64(seed: 1)
        for _ in 0..<400 {
            let a = kind.make(&random), b = kind.make(&random)
            let ab = Self.merge(a, b), ba = Self.merge(b, a)
            if ab != ba { Issue.record("\(kind): \(a) ⊔ \(b) = \(ab), but \(ba) the other way"); return }
        }
    }

    @Test(arguments: Kind.allCases)
    func mergeIsAssociative(_ kind: Kind) {
        var random = SplitMix64(seed: 2)
        for _ in 0..<400 {
            let a = kind.make(&random), b = kind.make(&random), c = kind.make(&random)
            let left = Self.merge(Self.merge(a, b), c), right = Self.merge(a, Self.merge(b, c))
            if left != right { Issue.record("\(kind): (\(a) ⊔ \(b)) ⊔ \(c) = \(left), but \(right)"); return }
        }
    }

    @Test(arguments: Kind.allCases)
    func mergeIsIdempotent(_ kind: Kind) {
        var random = SplitMix64(seed: 3)
        for _ in 0..<400 {
            let a = kind.make(&random), b = kind.make(&random)
            let ab = Self.merge(a, b)
            if Self.merge(ab, b) != ab || Self.merge(ab, a) != ab { Issue.record("\(kind): merging \(b) again changed \(ab)"); return }
            let canonical = Self.canonical(a)
            if canonical.merging(canonical) != nil { Issue.record("\(kind): \(canonical) merged into itself added something"); return }
            if kind != .orMap && canonical != a { Issue.record("\(kind): \(a) merged into itself became \(canonical)"); return }
        }
    }

    /// `merging` says nil exactly when the other state adds nothing.
    @Test(arguments: Kind.allCases)
    func mergingIsNilExactlyWhenNothingIsAdded(_ kind: Kind) {
        var random = SplitMix64(seed: 4)
        for _ in 0..<400 {
            let a = Self.canonical(kind.make(&random)), b = kind.make(&random)
            let merged = a.merging(b)
            if (merged == nil) != (Self.merge(a, b) == a) || merged == a {
                Issue.record("\(kind): \(a).merging(\(b)) = \(String(describing: merged))"); return
            }
        }
    }

    @Test func statesOfDifferentKindsDoNotMerge() {
        var random = SplitMix64(seed: 5)
        let values = [Self.lww(&random), Self.orMap(&random), Self.counter(&random)]
        for (i, a) in values.enumerated() {
            for (j, b) in values.enumerated() where i != j { #expect(a.merging(b) == nil) }
        }
    }

    @Test func lwwKeepsTheNewerRecordAndTheIncumbentOnATie() {
        let old = StoredValue.lww(LWWRecord(value: .int(1), timestamp: StorageFixtures.timestamp(1)))
        let new = StoredValue.lww(LWWRecord(value: nil, timestamp: StorageFixtures.timestamp(2)))
        #expect(old.merging(new) == new, "a newer tombstone wins")
        #expect(new.merging(old) == nil)
        let tie = StoredValue.lww(LWWRecord(value: .int(9), timestamp: StorageFixtures.timestamp(1)))
        #expect(old.merging(tie) == nil, "an equal timestamp keeps what is there")
    }

    @Test func orMapUnionsAddsAndKeepsEveryTombstone() {
        let a = StoredValue.orMap(ORMapEntry(key: "k", records: [Self.orRecord(1), Self.orRecord(2)], tombstones: [Self.orRecord(5).tag]))
        let b = StoredValue.orMap(ORMapEntry(key: "k", records: [Self.orRecord(3)], tombstones: [Self.orRecord(1).tag]))
        guard case .orMap(let merged)? = a.merging(b) else { Issue.record("nothing merged"); return }
        #expect(Set(merged.records) == [Self.orRecord(2), Self.orRecord(3)], "the removed add is gone")
        #expect(Set(merged.tombstones) == [Self.orRecord(1).tag, Self.orRecord(5).tag])
        #expect(merged.records.map(\.tag) == merged.records.map(\.tag).sorted())
        #expect(merged.tombstones == merged.tombstones.sorted())
    }

    @Test func countersTakeEachNodesMaximum() {
        let a = StoredValue.counter(PNCounter(positive: ["n1": 3, "n2": 1], negative: ["n1": 1]))
        let b = StoredValue.counter(PNCounter(positive: ["n1": 2, "n2": 4], negative: ["n3": 2]))
        #expect(a.merging(b) == .counter(PNCounter(positive: ["n1": 3, "n2": 4], negative: ["n1": 1, "n3": 2])))
        #expect(a.merging(.counter(PNCounter(positive: ["n1": 1]))) == nil)
    }

    // MARK: Copies

    static let partition = 5

    static func row(_ key: String, _ value: StoredValue, partition: Int = partition, sequence: Int64 = 0) -> StoredRecord {
        StoredRecord(key: StorageFixtures.key(key), partition: partition, value: value, sequence: sequence)
    }

    static func lwwRow(_ key: String, _ millis: Int64, partition: Int = partition) -> StoredRecord {
        row(key, .lww(LWWRecord(value: .int(millis), timestamp: StorageFixtures.timestamp(millis))), partition: partition, sequence: millis)
    }

    static func rows(_ replicas: BackupReplicas, _ partition: Int = partition) -> [RecordIdentity: StoredValue] {
        (replicas.copies[partition]?.rows ?? [:]).mapValues(\.value)
    }

    @Test func aBatchIsMergedIntoTheCopyOfItsPartitionOnly() {
        var replicas = BackupReplicas()
        let outcome = replicas.apply(partition: Self.partition, epoch: 1, batch: 1,
                                     rows: [Self.lwwRow("a", 2), Self.lwwRow("stray", 1, partition: Self.partition + 1)], completesSnapshot: false)
        #expect(outcome == .applied)
        #expect(replicas.copies.keys.sorted() == [Self.partition])
        #expect(Self.rows(replicas).count == 1)
        // An older state changes nothing, a newer one replaces it, its sequence with it.
        _ = replicas.apply(partition: Self.partition, epoch: 1, batch: 2, rows: [Self.lwwRow("a", 1)], completesSnapshot: false)
        #expect(replicas.copies[Self.partition]?.rows[Self.lwwRow("a", 2).identity] == Self.lwwRow("a", 2))
        _ = replicas.apply(partition: Self.partition, epoch: 1, batch: 3, rows: [Self.lwwRow("a", 3)], completesSnapshot: false)
        #expect(replicas.copies[Self.partition]?.rows[Self.lwwRow("a", 3).identity] == Self.lwwRow("a", 3))
        #expect(replicas.copies[Self.partition]?.rows[Self.lwwRow("a", 3).identity]?.sequence == 3)
    }

    @Test func aBatchOfAnOlderEpochIsRefused() {
        var replicas = BackupReplicas()
        _ = replicas.apply(partition: Self.partition, epoch: 3, batch: 1, rows: [Self.lwwRow("a", 1)], completesSnapshot: true)
        let outcome = replicas.apply(partition: Self.partition, epoch: 2, batch: 2, rows: [Self.lwwRow("a", 9), Self.lwwRow("b", 9)],
                                     completesSnapshot: true)
        #expect(outcome == .staleEpoch(current: 3))
        #expect(Self.rows(replicas) == [Self.lwwRow("a", 1).identity: Self.lwwRow("a", 1).value], "nothing of a deposed owner is kept")
        #expect(replicas.copies[Self.partition]?.epoch == 3)
        #expect(replicas.isComplete(Self.partition, epoch: 3))
        #expect(replicas.copies[Self.partition]?.unpersisted == [Self.lwwRow("a", 1).identity: 1])
    }

    @Test func aNewerEpochKeepsTheRowsButWaitsForTheNewOwnersSnapshot() {
        var replicas = BackupReplicas()
        _ = replicas.apply(partition: Self.partition, epoch: 1, batch: 1, rows: [Self.lwwRow("a", 1)], completesSnapshot: true)
        #expect(replicas.isComplete(Self.partition, epoch: 1))
        #expect(!replicas.isComplete(Self.partition, epoch: 2))
        #expect(replicas.apply(partition: Self.partition, epoch: 2, batch: 1, rows: [Self.lwwRow("b", 1)], completesSnapshot: false) == .applied)
        #expect(!replicas.isComplete(Self.partition, epoch: 2), "the new owner's snapshot has not arrived")
        #expect(!replicas.isComplete(Self.partition, epoch: 1))
        #expect(replicas.copies[Self.partition]?.epoch == 2)
        #expect(Set(Self.rows(replicas).keys) == [Self.lwwRow("a", 1).identity, Self.lwwRow("b", 1).identity])
        _ = replicas.apply(partition: Self.partition, epoch: 2, batch: 2, rows: [], completesSnapshot: true)
        #expect(replicas.isComplete(Self.partition, epoch: 2))
        // The same epoch again does not reset it.
        _ = replicas.apply(partition: Self.partition, epoch: 2, batch: 3, rows: [Self.lwwRow("c", 1)], completesSnapshot: false)
        #expect(replicas.isComplete(Self.partition, epoch: 2))
        #expect(!replicas.isComplete(Self.partition + 1, epoch: 2), "no copy, not complete")
    }

    @Test func persistedClearsTheRowsOfBatchesUpToItUnderTheCopysEpoch() {
        var replicas = BackupReplicas()
        _ = replicas.apply(partition: Self.partition, epoch: 2, batch: 1, rows: [Self.lwwRow("a", 1)], completesSnapshot: false)
        _ = replicas.apply(partition: Self.partition, epoch: 2, batch: 2, rows: [Self.lwwRow("b", 1)], completesSnapshot: false)
        _ = replicas.apply(partition: Self.partition, epoch: 2, batch: 3, rows: [Self.lwwRow("c", 1), Self.lwwRow("a", 2)], completesSnapshot: false)
        // Another epoch's watermark or another partition's: ignored.
        replicas.persisted(partition: Self.partition, epoch: 1, through: 10)
        replicas.persisted(partition: Self.partition + 1, epoch: 2, through: 10)
        #expect(replicas.copies[Self.partition]?.unpersisted.count == 3)
        replicas.persisted(partition: Self.partition, epoch: 2, through: 2)
        let unpersisted = replicas.copies[Self.partition]?.unpersisted ?? [:]
        #expect(unpersisted == [Self.lwwRow("c", 1).identity: 3, Self.lwwRow("a", 1).identity: 3],
                "a's newer state came with batch 3: it is not persisted yet")
        guard let taken = replicas.take(Self.partition) else { Issue.record("no copy"); return }
        #expect(Set(taken.unpersisted.map(\.key.key)) == ["a", "c"])
        #expect(taken.unpersisted.first { $0.key.key == "a" } == Self.lwwRow("a", 2), "the latest state is what must be persisted")
        #expect(Set(taken.rows.map(\.key.key)) == ["a", "b", "c"])
        #expect(!taken.isComplete)
    }

    @Test func takeGivesUpTheCopy() {
        var replicas = BackupReplicas()
        #expect(replicas.take(Self.partition) == nil)
        _ = replicas.apply(partition: Self.partition, epoch: 1, batch: 4, rows: [Self.lwwRow("a", 1), Self.lwwRow("b", 2)], completesSnapshot: true)
        replicas.persisted(partition: Self.partition, epoch: 1, through: 4)
        guard let taken = replicas.take(Self.partition) else { Issue.record("no copy"); return }
        #expect(StorageFixtures.sorted(taken.rows) == StorageFixtures.sorted([Self.lwwRow("a", 1), Self.lwwRow("b", 2)]))
        #expect(taken.unpersisted.isEmpty)
        #expect(taken.isComplete)
        #expect(replicas.take(Self.partition) == nil)
        #expect(replicas.copies.isEmpty)
        _ = replicas.apply(partition: 7, epoch: 1, batch: 1, rows: [Self.lwwRow("z", 1, partition: 7)], completesSnapshot: false)
        replicas.drop(7)
        #expect(replicas.copies.isEmpty)
    }

    /// Batches of random states of a few rows, applied in any order and any number of times,
    /// leave the same copy: the merge of everything.
    @Test(arguments: 0..<20)
    func aCopyIsTheSameWhateverTheOrderAndRepeatsOfItsBatches(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var batches: [[StoredRecord]] = []
        for _ in 0..<(1 + Int(random.next() % 8)) {
            batches.append((0..<Int(random.next() % 5)).map { _ in
                let kind = Kind.allCases[Int(random.next() % 3)]
                return Self.row("k\(random.next() % 3)", kind.make(&random))
            })
        }
        func copy(_ order: [Int]) -> [RecordIdentity: StoredValue] {
            var replicas = BackupReplicas()
            for index in order {
                _ = replicas.apply(partition: Self.partition, epoch: 1, batch: UInt64(index + 1), rows: batches[index], completesSnapshot: false)
            }
            return Self.rows(replicas).mapValues(Self.canonical)
        }
        let inOrder = copy(Array(batches.indices))
        let shuffled = copy(batches.indices.shuffled(using: &random))
        let repeated = copy((batches.indices.map { $0 } + batches.indices.shuffled(using: &random)).shuffled(using: &random))
        #expect(inOrder == shuffled, "seed \(seed)")
        #expect(inOrder == repeated, "seed \(seed)")
        // And it is the merge of every state of each row.
        var expected: [RecordIdentity: StoredValue] = [:]
        for row in batches.joined() { expected[row.identity] = expected[row.identity].map { Self.merge($0, row.value) } ?? row.value }
        #expect(inOrder == expected.mapValues(Self.canonical), "seed \(seed)")
    }
}
