import Testing
import TopGunCore
@testable import DataPlane

/// The table a coordinator publishes, checked over seeded sequences of joins and leaves.
@Suite struct PartitionAssignmentTests {
    static let partitions = PartitionFunction.partitionCount

    static func members(_ names: [String]) -> [PartitionTable.Member] {
        names.map { PartitionTable.Member(id: NodeID($0)) }
    }

    /// Balance, backups and validity of one table for `ids`.
    static func checkShape(_ table: PartitionTable, ids: [NodeID], backupCount: Int, seed: UInt64) {
        let n = ids.count
        var owned: [NodeID: Int] = [:]
        var backed: [NodeID: Int] = [:]
        for assignment in table.assignments {
            owned[assignment.owner, default: 0] += 1
            let expected = min(backupCount, n - 1)
            if assignment.backups.count != expected || Set(assignment.backups).count != expected || assignment.backups.contains(assignment.owner) {
                Issue.record("seed \(seed): backups \(assignment.backups) of owner \(assignment.owner), expected \(expected) others")
                return
            }
            for backup in assignment.backups { backed[backup, default: 0] += 1 }
        }
        let floorShare = partitions / n
        for id in ids where !(floorShare...(floorShare + 1)).contains(owned[id] ?? 0) {
            Issue.record("seed \(seed): \(id) owns \(owned[id] ?? 0) of \(partitions) with \(n) members")
        }
        #expect(Set(table.members.map(\.id)) == Set(ids))
        if backupCount > 0 && n > 1 {
            let cap = (partitions * min(backupCount, n - 1) + n - 1) / n
            // Kept backups respect the cap; repair may add a few above it where nothing else fits.
            #expect(backed.values.max()! <= cap + 2, "seed \(seed): backups per member \(backed)")
        }
    }

    @Test(arguments: 0..<30)
    func joinsAndLeavesMoveFewOwnersAndKeepTheTableBalanced(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let backupCount = Int(random.next() % 3)
        var live = (0..<(1 + Int(random.next() % 4))).map { "n\($0)" }
        var next = live.count
        guard var table = PartitionAssignment.next(after: nil, members: Self.members(live), backupCount: backupCount) else {
            Issue.record("no first table")
            return
        }
        #expect(table.version == 1)
        #expect(table.assignments.allSatisfy { $0.epoch == 1 })
        Self.checkShape(table, ids: live.map(NodeID.init), backupCount: backupCount, seed: seed)
        for _ in 0..<20 {
            let before = table
            let countBefore = live.count
            if live.count > 1 && (live.count >= 9 || random.next() % 2 == 0) {
                live.remove(at: Int(random.next() % UInt64(live.count)))
            } else {
                live.append("n\(next)")
                next += 1
            }
            guard let after = PartitionAssignment.next(after: before, members: Self.members(live).shuffled(using: &random), backupCount: backupCount) else {
                Issue.record("seed \(seed): no table for \(live)")
                return
            }
            Self.checkShape(after, ids: live.map(NodeID.init), backupCount: backupCount, seed: seed)
            let moved = (0..<Self.partitions).filter { before.owner(of: $0) != after.owner(of: $0) }
            let bound = (Self.partitions + max(countBefore, live.count) - 1) / max(countBefore, live.count)
            #expect(moved.count <= bound, "seed \(seed): \(moved.count) owners moved, bound \(bound) (\(countBefore) → \(live.count) members)")
            #expect(after.version == before.version + 1)
            for partition in 0..<Self.partitions {
                let expected = before.assignments[partition].epoch + (moved.contains(partition) ? 1 : 0)
                if after.assignments[partition].epoch != expected { Issue.record("seed \(seed): epoch of \(partition)") }
            }
            // The same members again change nothing, whatever their order.
            let again = PartitionAssignment.next(after: after, members: Self.members(live).reversed(), backupCount: backupCount)
            #expect(again == after)
            table = after
        }
    }

    @Test func aFailoverPromotesTheBackupThatHoldsTheRecords() {
        let three = Self.members(["a", "b", "c"])
        let first = PartitionAssignment.next(after: nil, members: three, backupCount: 1)!
        let afterLoss = PartitionAssignment.next(after: first, members: Self.members(["a", "c"]), backupCount: 1)!
        let orphans = (0..<Self.partitions).filter { first.owner(of: $0) == NodeID("b") }
        let promoted = orphans.filter { first.assignments[$0].backups.contains(afterLoss.owner(of: $0)) }
        #expect(!orphans.isEmpty)
        #expect(promoted.count == orphans.count, "every orphan went to the member that backed it up")
        // Partitions a and c owned stay where they were.
        for partition in 0..<Self.partitions where first.owner(of: partition) != NodeID("b") {
            #expect(afterLoss.owner(of: partition) == first.owner(of: partition))
        }
    }

    @Test func oneMemberOwnsEverythingWithoutBackups() {
        let table = PartitionAssignment.next(after: nil, members: Self.members(["solo"]), backupCount: 1)!
        #expect(table.ownsEverything(NodeID("solo")))
        #expect(table.assignments.allSatisfy { $0.backups.isEmpty })
    }

    @Test func noMembersOrRepeatedMembersGiveNoTable() {
        #expect(PartitionAssignment.next(after: nil, members: [], backupCount: 1) == nil)
        #expect(PartitionAssignment.next(after: nil, members: Self.members(["a", "a"]), backupCount: 1) == nil)
    }
}
