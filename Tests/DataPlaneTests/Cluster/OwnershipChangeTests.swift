@testable import DataPlane
import Testing
import TopGunCore

/// What a new table changes for one node: the partitions it gives up and those it loads, by
/// epoch.
@Suite struct OwnershipChangeTests {
    static let me = NodeID("me")
    static let other = NodeID("other")
    static let partitions = PartitionFunction.partitionCount

    /// A table where `me` owns `mine` (partition → epoch) and `other` the rest (epoch 1).
    static func table(_ mine: [Int: Int64]) -> PartitionTable {
        PartitionTable(
            version: 2, members: [PartitionTable.Member(id: me), PartitionTable.Member(id: other)],
            assignments: (0..<partitions).map { partition in
                if let epoch = mine[partition] { return PartitionTable.Assignment(owner: me, epoch: epoch) }
                return PartitionTable.Assignment(owner: other, epoch: 1)
            })!
    }

    @Test func aFirstTableGainsEveryPartitionTheNodeOwns() {
        let change = OwnershipChange.between(held: [:], next: Self.table([3: 1, 1: 1, 200: 4]), node: Self.me)
        #expect(change.gained == [1, 3, 200])
        #expect(change.lost == [])
    }

    @Test func theSameTableChangesNothing() {
        let held: [Int: Int64] = [3: 1, 1: 2]
        let change = OwnershipChange.between(held: held, next: Self.table(held), node: Self.me)
        #expect(change.gained.isEmpty && change.lost.isEmpty)
    }

    @Test func aPartitionOwnedElsewhereIsLost() {
        let change = OwnershipChange.between(held: [3: 1, 4: 1], next: Self.table([4: 1]), node: Self.me)
        #expect(change.lost == [3])
        #expect(change.gained == [])
    }

    @Test func aPartitionOwnedAgainUnderANewerEpochIsLostAndGained() {
        // Another node owned 3 meanwhile (epoch 2): what memory holds of it is stale.
        let change = OwnershipChange.between(held: [3: 1, 4: 1], next: Self.table([3: 3, 4: 1]), node: Self.me)
        #expect(change.lost == [3])
        #expect(change.gained == [3])
    }

    @Test func aPartitionHeldUnderAnyOtherEpochIsReloaded() {
        let change = OwnershipChange.between(held: [3: 5], next: Self.table([3: 4]), node: Self.me)
        #expect(change.lost == [3] && change.gained == [3])
    }

    @Test func anotherNodesViewOfTheSameTable() {
        let table = Self.table([0: 1, 1: 1])
        let change = OwnershipChange.between(held: [:], next: table, node: Self.other)
        #expect(change.gained == Array(2..<Self.partitions))
        #expect(change.lost.isEmpty)
        // A node the table does not name gains nothing and loses what it held.
        let stranger = OwnershipChange.between(held: [0: 1, 7: 1], next: table, node: NodeID("stranger"))
        #expect(stranger.gained.isEmpty)
        #expect(stranger.lost == [0, 7])
    }

    /// Over random held maps and tables: applying the change (drop what is lost, load what is
    /// gained under the table's epoch) leaves the node holding exactly what the table gives
    /// it, and the change is no larger than that needs.
    @Test(arguments: 0..<30)
    func applyingTheChangeHoldsExactlyWhatTheTableGives(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var held: [Int: Int64] = [:]
        var mine: [Int: Int64] = [:]
        for partition in 0..<Self.partitions {
            if random.next() % 3 == 0 { held[partition] = Int64(1 + random.next() % 3) }
            if random.next() % 3 == 0 { mine[partition] = Int64(1 + random.next() % 3) }
        }
        let table = Self.table(mine)
        let (gained, lost) = OwnershipChange.between(held: held, next: table, node: Self.me)
        #expect(gained == gained.sorted() && Set(gained).count == gained.count)
        #expect(lost == lost.sorted() && Set(lost).count == lost.count)
        var after = held
        for partition in lost {
            #expect(held[partition] != nil, "seed \(seed): lost \(partition), which it did not hold")
            after[partition] = nil
        }
        for partition in gained {
            #expect(after[partition] == nil, "seed \(seed): gained \(partition) while still holding it")
            after[partition] = table.assignment(of: partition).epoch
        }
        #expect(after == mine, "seed \(seed)")
        // Nothing held under the table's own epoch is reloaded.
        for partition in gained where held[partition] == mine[partition] {
            Issue.record("seed \(seed): \(partition) reloaded though held under epoch \(mine[partition]!)")
        }
    }
}
