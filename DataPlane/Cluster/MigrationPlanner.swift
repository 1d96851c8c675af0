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
        // Nodes whose lease holds, leaving ones included: their partitions move in two steps;
        // those of the others at once.
        let alive = Set(view.leases.filter(\.isLive).map(\.lease.node))
        let restarted = view.restarted(since: published)
        guard !restarted.isEmpty else {
            return plan(
                after: published, members: members, alive: alive, backupCount: backupCount,
                maxConcurrentMigrations: maxConcurrentMigrations, synced: synced)
        }
        // Restarted nodes: their previous runs' holdings fail over first, and the rest is
        // planned in the same table, with no copy reported complete for a restarted node
        // counting (those are its previous run's; publishing the table forgets them).
        let failedOver = failOverPreviousRuns(of: restarted, in: published, view: view, assignable: members, alive: alive)
        var result = plan(
            after: failedOver, members: members, alive: alive, backupCount: backupCount, maxConcurrentMigrations: maxConcurrentMigrations,
            synced: { partition, epoch in synced(partition, epoch).subtracting(restarted) }) ?? failedOver
        // A partition that just failed over starts no move in the same table (its new owner
        // first takes it over).
        var assignments = result.assignments
        for partition in assignments.indices where failedOver.assignments[partition].epoch != published.assignments[partition].epoch {
            assignments[partition].migrationTarget = nil
        }
        result = PartitionTable(version: published.version + 1, members: result.members, assignments: assignments)!
        return result
    }

    /// The ordinary plan: the next table after `published` for `members` (the assignable
    /// nodes), where `alive` are the nodes whose lease holds.
    static func plan(
        after published: PartitionTable, members: [PartitionTable.Member], alive: Set<NodeID>, backupCount: Int,
        maxConcurrentMigrations: Int, synced: Synced
    ) -> PartitionTable? {
        let live = Set(members.map(\.id))
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
                wanted: want.backups + [want.owner], live: live, needed: needed)
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

    /// `published` as it stands once the previous runs of `restarted` nodes (their leases
    /// hold runs other than the table records) are gone, as after a crash, whatever the new
    /// runs' leases say: their partitions fail over at once (a backup first: it holds what the
    /// previous run acknowledged) under a new epoch, they are dropped as backups and migration
    /// targets (their copies are gone; named again later, they get a new snapshot), and the
    /// members record their new runs. Same version: the caller publishes the next.
    static func failOverPreviousRuns(
        of restarted: Set<NodeID>, in published: PartitionTable, view: MembershipView, assignable: [PartitionTable.Member],
        alive: Set<NodeID>
    ) -> PartitionTable {
        let live = Set(assignable.map(\.id))
        var assignments = published.assignments
        var owned: [NodeID: Int] = [:]
        for assignment in assignments where !restarted.contains(assignment.owner) { owned[assignment.owner, default: 0] += 1 }
        let others = live.subtracting(restarted).sorted()
        for partition in assignments.indices {
            var next = assignments[partition]
            next.backups.removeAll { restarted.contains($0) }
            if let target = next.migrationTarget, restarted.contains(target) { next.migrationTarget = nil }
            if restarted.contains(next.owner) {
                let successor =
                    next.backups.first { live.contains($0) } ?? next.backups.first { alive.contains($0) }
                    ?? others.min { (owned[$0] ?? 0, $0) < (owned[$1] ?? 0, $1) } ?? next.owner
                next.owner = successor
                next.epoch += 1
                next.migrationTarget = nil
                next.backups.removeAll { $0 == successor }
                owned[successor, default: 0] += 1
            }
            assignments[partition] = next
        }
        // The assignable nodes as their leases say (restarted ones with their new runs), and
        // the table's other members as they were (the next plan drops those it no longer needs).
        var members = assignable
        for member in published.members where !members.contains(where: { $0.id == member.id }) {
            if restarted.contains(member.id), let row = view.leases.first(where: { $0.lease.node == member.id }) {
                members.append(PartitionTable.Member(
                    id: member.id, websocketURL: row.lease.websocketURL, httpURL: row.lease.httpURL, incarnation: row.lease.incarnation))
            } else {
                members.append(member)
            }
        }
        members.sort { $0.id < $1.id }
        // Every owner and backup is a member: the table is valid.
        return PartitionTable(version: published.version, members: members, assignments: assignments)!
    }

    /// A partition's backups: the live ones it has keep their place (each holds a complete
    /// copy, or is getting one: moving a backup would drop a copy for an empty one), then a
    /// previous owner that stays alive, then the backups the assignment wants and its future
    /// owner (a partition waiting for its move keeps a copy there, and then moves fast), up to
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
