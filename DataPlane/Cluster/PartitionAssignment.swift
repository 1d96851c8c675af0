import TopGunCore

/// The partition table a coordinator publishes for a set of live members (design.md §6):
/// pure, deterministic (the same inputs give the same table on any node), and tested without
/// a cluster.
///
/// Owners are balanced tightly: with `n` members, every member owns ⌊271/n⌋ or ⌈271/n⌉
/// partitions. Moves are few: a member keeps what it owns unless it owns more than its share
/// (a join: the newcomer takes only its share from the others), and a departed member's
/// partitions go to members below their share, preferring one that was already a backup of
/// the partition (it holds the records: a failover promotes it). So a join or a leave changes
/// at most ⌈271/(n+1)⌉ owners. Every changed owner gets the next epoch; the table's version
/// moves whenever anything in it changed.
///
/// Backups: `min(backupCount, n − 1)` per partition, never the owner, kept where they were
/// while the member lives (a partition's previous owner first: it holds the records), the
/// missing ones given to the members holding fewest, then moved from the member holding most
/// to one holding two fewer until none can be (a newcomer gets its share of backups too).
public enum PartitionAssignment {
    /// The table after `previous` (nil: the first table) for `members` (at least one).
    /// Returns `previous` itself when nothing changes.
    public static func next(after previous: PartitionTable?, members: [PartitionTable.Member], backupCount: Int) -> PartitionTable? {
        let members = members.sorted { $0.id < $1.id }
        let ids = members.map(\.id)
        guard !ids.isEmpty, Set(ids).count == ids.count, backupCount >= 0 else { return nil }
        let owners = assignOwners(previous: previous, ids: ids)
        let backups = assignBackups(previous: previous, owners: owners, ids: ids, count: min(backupCount, ids.count - 1))
        var assignments: [PartitionTable.Assignment] = []
        assignments.reserveCapacity(partitionCount)
        for partition in 0..<partitionCount {
            let before = previous?.assignments[partition]
            let epoch: Int64
            if let before { epoch = before.owner == owners[partition] ? before.epoch : before.epoch + 1 } else { epoch = 1 }
            assignments.append(PartitionTable.Assignment(owner: owners[partition], backups: backups[partition], epoch: epoch))
        }
        if let previous, previous.assignments == assignments, previous.members == members { return previous }
        return PartitionTable(version: (previous?.version ?? 0) + 1, members: members, assignments: assignments)
    }

    static var partitionCount: Int { PartitionFunction.partitionCount }

    /// Owners: kept, shed down to each member's share, and the rest placed.
    static func assignOwners(previous: PartitionTable?, ids: [NodeID]) -> [NodeID] {
        let n = ids.count
        let floorShare = partitionCount / n
        // This many members may own one more than the floor.
        var roomAboveFloor = partitionCount - floorShare * n
        let live = Set(ids)
        var owner = [NodeID?](repeating: nil, count: partitionCount)
        var owned: [NodeID: [Int]] = Dictionary(uniqueKeysWithValues: ids.map { ($0, []) })
        if let previous {
            for partition in 0..<partitionCount where live.contains(previous.owner(of: partition)) {
                owned[previous.owner(of: partition)]!.append(partition)
            }
        }
        // Shed: the members owning most keep one above the floor while there is room for it;
        // every other keeps the floor. What they shed (their highest partitions) is placed below.
        let byLoad = ids.sorted { (owned[$0]!.count, $1) > (owned[$1]!.count, $0) }
        var share: [NodeID: Int] = [:]
        for id in byLoad {
            let kept = owned[id]!
            var limit = floorShare
            if kept.count > floorShare && roomAboveFloor > 0 {
                limit = floorShare + 1
                roomAboveFloor -= 1
            }
            let keep = kept.prefix(limit)
            for partition in keep { owner[partition] = id }
            share[id] = keep.count
        }
        // Place: each partition without an owner goes to a member below its share, a previous
        // backup of it first (it holds the records), else the one owning fewest.
        for partition in 0..<partitionCount where owner[partition] == nil {
            func hasRoom(_ id: NodeID) -> Bool {
                share[id]! < floorShare || (share[id]! == floorShare && roomAboveFloor > 0)
            }
            let backups = previous?.assignments[partition].backups ?? []
            let chosen = backups.first { live.contains($0) && hasRoom($0) }
                ?? ids.filter(hasRoom).min { (share[$0]!, $0) < (share[$1]!, $1) }!
            if share[chosen]! == floorShare { roomAboveFloor -= 1 }
            share[chosen]! += 1
            owner[partition] = chosen
        }
        return owner.map { $0! }
    }

    /// Backups: `count` distinct non-owners per partition, kept where possible, balanced.
    static func assignBackups(previous: PartitionTable?, owners: [NodeID], ids: [NodeID], count: Int) -> [[NodeID]] {
        guard count > 0 else { return Array(repeating: [], count: partitionCount) }
        let live = Set(ids)
        var held: [NodeID: Int] = Dictionary(uniqueKeysWithValues: ids.map { ($0, 0) })
        var result = [[NodeID]](repeating: [], count: partitionCount)
        // Kept: every live holder of the records that is not the new owner (the previous
        // owner of a moved partition first).
        for partition in 0..<partitionCount {
            guard let before = previous?.assignments[partition] else { continue }
            let candidates = (before.owner == owners[partition] ? [] : [before.owner]) + before.backups
            for id in candidates where result[partition].count < count {
                guard live.contains(id), id != owners[partition], !result[partition].contains(id) else { continue }
                result[partition].append(id)
                held[id]! += 1
            }
        }
        // Filled: the members holding fewest backups.
        for partition in 0..<partitionCount {
            while result[partition].count < count {
                let chosen = ids.filter { $0 != owners[partition] && !result[partition].contains($0) }
                    .min { (held[$0]!, $0) < (held[$1]!, $1) }!
                result[partition].append(chosen)
                held[chosen]! += 1
            }
        }
        // Balanced: while the member holding most holds two more than another that could take
        // one of its backups, one moves (a newcomer gets its share; the rest stays).
        var moved = true
        while moved {
            moved = false
            let byLoad = ids.sorted { (held[$0]!, $1) > (held[$1]!, $0) }
            let most = byLoad[0]
            for least in byLoad.reversed() where held[most]! - held[least]! > 1 {
                guard let partition = (0..<partitionCount).first(where: {
                    owners[$0] != least && result[$0].contains(most) && !result[$0].contains(least)
                }) else { continue }
                result[partition][result[partition].firstIndex(of: most)!] = least
                held[most]! -= 1
                held[least]! += 1
                moved = true
                break
            }
        }
        return result
    }
}
