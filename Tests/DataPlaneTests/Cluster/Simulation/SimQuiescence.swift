@testable import DataPlane
import TopGunCore

/// Whether the cluster has come to rest after the faults: every node up and serving the
/// latest table, the table final (the planner would publish nothing more), and nothing in
/// flight that moves data (flushes, loads, replication, hand-overs).
enum SimQuiescence {
    /// Nil when settled; otherwise the first thing still going on.
    static func unsettledReason(_ world: SimWorld) -> String? {
        let database = world.database
        guard let table = database.table else { return "no table published" }
        for node in world.nodes {
            guard let node else { return "a node is down" }
            guard node.joined, node.reacquireDeadline == nil else { return "\(node.id) has no lease" }
            if node.appliedVersion != table.version { return "\(node.id) applied v\(node.appliedVersion.map(String.init) ?? "none") of v\(table.version)" }
            if !node.isServing { return "\(node.id) does not hold every partition it owns" }
            if let run = node.ownershipRun {
                let waiting = run.fencing.map { "fencing partition \($0.partition), awaiting flushes \($0.flights.sorted()) (in flight: \(node.flushCalls.keys.sorted()))" }
                return "\(node.id) is still applying a table: \(waiting ?? "loading \(run.gained.count) partitions")"
            }
            // (A refresh in flight is the routine poll: the version check above covers it.)
            if !node.ownershipQueue.isEmpty { return "\(node.id) has table changes queued" }
            if node.writeBehind.status.pendingCount > 0 || !node.flushCalls.isEmpty { return "\(node.id) has rows to flush" }
            if !node.log.backupsReadyToSend.isEmpty { return "\(node.id) has rows to replicate" }
            if !node.displacedPending.isEmpty || node.displacedDelivery != nil {
                let partitions = Set((node.displacedPending + (node.displacedDelivery?.rows ?? [])).map(\.partition)).sorted()
                return "\(node.id) has rows to hand over (partitions \(partitions.map { "\($0)→\(table.owner(of: $0))" }))"
            }
            for continuation in node.pendingCalls.values {
                switch continuation {
                case .replicate, .mergeRecords, .forward, .load, .flush, .reportSynced, .movingCopiesRead: return "\(node.id) awaits a data request"
                default: continue
                }
            }
            for partition in table.partitions(ownedBy: node.id) {
                let assignment = table.assignment(of: partition)
                for replica in assignment.replicas where node.snapshots[partition]?[replica]?.isSynced(under: assignment.epoch) != true {
                    return "\(node.id) has not synced partition \(partition) to \(replica)"
                }
            }
        }
        for (partition, assignment) in table.assignments.enumerated() {
            if let target = assignment.migrationTarget {
                let owner = world.nodes[world.index(of: assignment.owner)]
                return "partition \(partition) is moving from \(assignment.owner) to \(target) (epoch \(assignment.epoch)): "
                    + "the owner's snapshot \(owner.map { "\($0.snapshots[partition]?[target].map { "\($0)" } ?? "none")" } ?? "(owner down)"), "
                    + "synced in the database \(database.synced[partition]?[target].map(String.init) ?? "never")"
            }
            for backup in assignment.backups {
                guard let node = world.nodes[world.index(of: backup)], node.replicas.isComplete(partition, epoch: assignment.epoch) else {
                    return "\(backup)'s copy of partition \(partition) is incomplete"
                }
            }
        }
        let view = world.plannerView(database.memberLeases(now: world.now))
        let synced = database.synced
        let next = MigrationPlanner.next(
            after: table, view: view, backupCount: world.settings.backupCount, protocolVersion: ClusterSettings.protocolVersion,
            maxConcurrentMigrations: world.settings.maxConcurrentMigrations,
            synced: { partition, epoch in Set((synced[partition] ?? [:]).filter { $0.value == epoch }.keys) })
        if next != nil { return "the coordinator would publish another table" }
        return nil
    }
}
