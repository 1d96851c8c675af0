import TopGunCore

/// The coordinator's plan (pure, design.md §6): the next table for the live members, moving
/// partitions so that writes never stop for long and nothing is lost.
///
/// `PartitionAssignment` says where each partition should end up. A partition whose owner
/// is gone (its lease expired, or it left) moves at once, to the node the assignment picks
/// (a backup first: it holds a copy). A partition whose owner is alive moves in two steps:
/// its new owner is first named migration target and follows the owner's changes while the
/// owner streams it a snapshot; once it holds a complete copy (`synced`), ownership flips by
/// epoch. At most `maxConcurrentMigrations` partitions are in the first step at once.
public enum MigrationPlanner {
    /// Nodes holding a complete copy of partition `p` under epoch `e`: `synced(p, e)`.
    public typealias Synced = (_ partition: Int, _ epoch: Int64) -> Set<NodeID>

    public static func next(
        after published: PartitionTable?, view: MembershipView, backupCount: Int, protocolVersion: Int,
        maxConcurrentMigrations: Int, synced: Synced
    ) -> PartitionTable? {
        let members = view.assignable(protocolVersion: protocolVersion)
        guard !members.isEmpty else { return nil }
        guard let published else {
            return PartitionAssignment.next(after: nil, members: members, backupCount: backupCount)
        }
        let live = Set(members.map(\.id))
        // Nodes whose lease holds, leaving ones included: their partitions move in two steps;
        // those of the others at once.
        let alive = Set(view.leases.filter(\.isLive).map(\.lease.node))
        // Where everything should end up, as if every migration under way had finished.
        var projected = published.assignments
        for partition in projected.indices {
            if let target = projected[partition].migrationTarget, live.contains(target) {
                projected[partition].owner = target
                projected[partition].backups.removeAll { $0 == target }
            }
            projected[partition].migrationTarget = nil
        }
        var everyone = published.members
        for member in members where !everyone.contains(where: { $0.id == member.id }) { everyone.append(member) }
        guard let projectedTable = PartitionTable(version: published.version, members: everyone, assignments: projected),
            let desired = PartitionAssignment.next(after: projectedTable, members: members, backupCount: backupCount)
        else { return nil }
        var assignments = published.assignments
        var migrating = assignments.filter { $0.migrationTarget != nil }.count
        let needed = min(backupCount, members.count - 1)
        for partition in assignments.indices {
            let current = published.assignments[partition]
            let want = desired.assignments[partition]
            var next = current
            var previousOwner: NodeID?
            if want.owner == current.owner {
                next.migrationTarget = nil
            } else if !alive.contains(current.owner) {
                // The owner is gone: its successor takes over now (failover).
                next.owner = want.owner
                next.epoch = current.epoch + 1
                next.migrationTarget = nil
            } else if current.migrationTarget == want.owner {
                if synced(partition, current.epoch).contains(want.owner) {
                    next.owner = want.owner
                    next.epoch = current.epoch + 1
                    next.migrationTarget = nil
                    previousOwner = current.owner
                }
            } else if current.migrationTarget == nil, migrating < maxConcurrentMigrations {
                next.migrationTarget = want.owner
                migrating += 1
            } else if current.migrationTarget != nil {
                // Its target is no longer where the partition should go (it died, or the
                // members changed again): the next step picks a new one.
                next.migrationTarget = nil
                migrating -= 1
            }
            next.backups = backups(
                keeping: current.backups, previousOwner: previousOwner, owner: next.owner, target: next.migrationTarget,
                wanted: want.backups, live: live, needed: needed)
            assignments[partition] = next
        }
        var tableMembers = members
        // Nodes that still own or back something stay members (with their last endpoints)
        // until the table no longer names them.
        for member in published.members where !live.contains(member.id) && !tableMembers.contains(where: { $0.id == member.id }) {
            if assignments.contains(where: { $0.owner == member.id || $0.backups.contains(member.id) }) { tableMembers.append(member) }
        }
        for index in assignments.indices {
            assignments[index].backups.removeAll { id in !tableMembers.contains { $0.id == id } }
        }
        tableMembers.sort { $0.id < $1.id }
        if assignments == published.assignments, tableMembers == published.members { return nil }
        return PartitionTable(version: published.version + 1, members: tableMembers, assignments: assignments)
    }

    /// A partition's backups: the live ones it has keep their place (each holds a complete
    /// copy, or is getting one: moving a backup would drop a copy for an empty one), then a
    /// previous owner that stays alive, then the backups the assignment wants, up to
    /// `needed`. Backups are not moved just to balance them: that would leave a partition with
    /// fewer copies while the new one fills, and feed the next plan a different table.
    static func backups(
        keeping current: [NodeID], previousOwner: NodeID?, owner: NodeID, target: NodeID?, wanted: [NodeID], live: Set<NodeID>, needed: Int
    ) -> [NodeID] {
        var result: [NodeID] = []
        for candidate in current + (previousOwner.map { [$0] } ?? []) + wanted where result.count < needed {
            guard live.contains(candidate), candidate != owner, candidate != target, !result.contains(candidate) else { continue }
            result.append(candidate)
        }
        return result
    }
}
