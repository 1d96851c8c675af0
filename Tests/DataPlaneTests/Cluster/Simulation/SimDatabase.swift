@testable import DataPlane
import Foundation
import TopGunCore

/// The shared PostgreSQL database as the cluster sees it (`PostgresClusterStore`,
/// `PostgresServerStorage.store(_:claiming:)`), reduced to its semantics. Every operation is
/// one transaction executed atomically at the virtual instant its request arrives; the clock
/// is the virtual clock, so leases expire by it.
final class SimDatabase {
    struct LeaseRow {
        var lease: ClusterLease
        var expiresAt: Int64
        var startedAt: Int64
    }

    /// The coordinator's advisory lock: held by one connection of one run of a node. The
    /// session outlives its node's interest in it while the node cannot reach the database (a
    /// close or a crash is heard of only once the link heals), unless another node evicts it.
    struct LockHolder: Equatable {
        var node: Int
        var generation: Int
        var session: UInt64
    }

    /// One row version written by a flush, kept for the invariants (who wrote what, when,
    /// under which epoch).
    struct Commit {
        var time: Int64
        var node: NodeID
        var record: StoredRecord
        /// The partition's epoch in `cluster_partitions` when the row was written.
        var epochAtCommit: Int64
        var ownerAtCommit: NodeID?
    }

    let leaseDuration: Int64
    /// Test-only: skip the claim check of a flush (epoch fencing off). The harness must then
    /// find a violation, or it could not fail.
    let fencing: Bool

    private(set) var leases: [NodeID: LeaseRow] = [:]
    private(set) var lock: LockHolder?
    private(set) var table: PartitionTable?
    private(set) var records: [RecordIdentity: StoredRecord] = [:]
    private(set) var synced: [Int: [NodeID: Int64]] = [:]
    private(set) var history: [RecordIdentity: [Commit]] = [:]
    /// Members published under a new run while the previous table still named their previous
    /// one (a restart or a lease taken again, seen before its expiry was): the races whose
    /// previous runs' partitions fail over by incarnation.
    private(set) var runsReplaced = 0
    /// Per node, each unbroken stretch of one run's lease being live (for the invariants).
    private(set) var leaseSpans: [NodeID: [LeaseSpan]] = [:]

    struct LeaseSpan {
        var incarnation: String
        var start: Int64
        /// Until then (exclusive), unless renewed again.
        var end: Int64
    }

    /// Test-only (`SimSettings.checkSyncedReports` off): the old `reportSynced` upsert.
    let checkSyncedReports: Bool

    init(leaseDuration: Int64, fencing: Bool, checkSyncedReports: Bool = true) {
        self.leaseDuration = leaseDuration
        self.checkSyncedReports = checkSyncedReports
        self.fencing = fencing
    }

    // MARK: Leases (cluster_members)

    /// `acquire`: inserts the row, or takes it over when it expired or is this incarnation's.
    func acquire(_ lease: ClusterLease, now: Int64) -> Bool {
        if let row = leases[lease.node], row.expiresAt > now, row.lease.incarnation != lease.incarnation { return false }
        let stillLive = leases[lease.node].map { $0.expiresAt > now } ?? false
        leases[lease.node] = LeaseRow(lease: lease, expiresAt: now + leaseDuration, startedAt: now)
        recordSpan(lease, live: stillLive, now: now)
        return true
    }

    /// `renew`: only this incarnation's live lease.
    func renew(_ lease: ClusterLease, now: Int64) -> Bool {
        guard var row = leases[lease.node], row.lease.incarnation == lease.incarnation, row.expiresAt > now else { return false }
        row.lease = lease
        row.expiresAt = now + leaseDuration
        leases[lease.node] = row
        recordSpan(lease, live: true, now: now)
        return true
    }

    /// A run's lease taken or renewed: its span goes on if it was live, else a new one starts.
    private func recordSpan(_ lease: ClusterLease, live: Bool, now: Int64) {
        if live, var last = leaseSpans[lease.node]?.last, last.incarnation == lease.incarnation {
            last.end = now + leaseDuration
            leaseSpans[lease.node]![leaseSpans[lease.node]!.count - 1] = last
        } else {
            leaseSpans[lease.node, default: []].append(LeaseSpan(incarnation: lease.incarnation, start: now, end: now + leaseDuration))
        }
    }

    /// Whether one run of `node` held its lease from `start` to `end` without a gap.
    func leaseHeld(by node: NodeID, from start: Int64, through end: Int64) -> Bool {
        (leaseSpans[node] ?? []).contains { $0.start <= start && end < $0.end }
    }

    func memberLeases(now: Int64) -> [MemberLease] {
        leases.keys.sorted().map { node in
            let row = leases[node]!
            return MemberLease(lease: row.lease, isLive: row.expiresAt > now, startedAt: Date(timeIntervalSince1970: Double(row.startedAt) / 1000))
        }
    }

    func isLive(_ node: NodeID, incarnation: String, now: Int64) -> Bool {
        guard let row = leases[node] else { return false }
        return row.lease.incarnation == incarnation && row.expiresAt > now
    }

    // MARK: Coordinator

    func tryLock(_ holder: LockHolder) -> Bool {
        if lock == nil { lock = holder }
        return lock == holder
    }

    /// `evictStaleCoordinator`, after a failed `tryLock`: ends the lock's session if its node
    /// (by node id, whatever its run) holds no live lease. Returns the session ended.
    func evictStaleLock(now: Int64) -> LockHolder? {
        guard let holder = lock else { return nil }
        let node = SimWorld.nodeID(holder.node)
        if let row = leases[node], row.expiresAt > now { return nil }
        lock = nil
        return holder
    }

    /// The lock's session ended: its connection closed (the node ended it, or crashed, and
    /// the database heard of it).
    func endSession(_ holder: LockHolder) {
        if lock == holder { lock = nil }
    }

    func holds(_ holder: LockHolder) -> Bool { lock == holder }

    /// `publish`: compare-and-set on the table's version, on the lock's connection. In the
    /// same transaction, complete copies stop counting for nodes the new table no longer names
    /// in a partition's row, and for members whose run changed since the previous table.
    func publish(_ next: PartitionTable, replacing expected: Int64?, by holder: LockHolder) -> Bool {
        guard lock == holder, table?.version == expected else { return false }
        var previousRuns: [NodeID: String] = [:]
        for member in table?.members ?? [] {
            if let run = member.incarnation { previousRuns[member.id] = run }
        }
        let restarted = Set(next.members.compactMap { member -> NodeID? in
            guard let run = member.incarnation, let previous = previousRuns[member.id], previous != run else { return nil }
            return member.id
        })
        table = next
        runsReplaced += restarted.count
        for partition in synced.keys.sorted() where checkSyncedReports {
            let row = next.assignment(of: partition)
            let kept = synced[partition]!.filter { node, _ in
                (node == row.owner || row.backups.contains(node) || row.migrationTarget == node) && !restarted.contains(node)
            }
            synced[partition] = kept.isEmpty ? nil : kept
        }
        return true
    }

    // MARK: Replicas (cluster_replicas)

    /// `reportSynced`, one statement per report: recorded only while the partition's row
    /// names the node a backup or migration target under that epoch and (when a run is given)
    /// that run holds the node's lease row, and never lowering a newer epoch.
    func reportSynced(_ reports: [SimSyncedReport]) {
        for report in reports {
            guard checkSyncedReports else {
                synced[report.partition, default: [:]][report.node] = report.epoch
                continue
            }
            guard let table else { continue }
            let row = table.assignment(of: report.partition)
            guard row.epoch == report.epoch, row.backups.contains(report.node) || row.migrationTarget == report.node else { continue }
            if let run = report.incarnation, !run.isEmpty, leases[report.node]?.lease.incarnation != run { continue }
            if let known = synced[report.partition]?[report.node], known > report.epoch { continue }
            synced[report.partition, default: [:]][report.node] = report.epoch
        }
    }

    // MARK: Records

    func load(_ partitions: [Int]) -> [Int: [StoredRecord]] {
        var byPartition: [Int: [StoredRecord]] = [:]
        for partition in partitions { byPartition[partition] = [] }
        for identity in sortedIdentities() {
            let record = records[identity]!
            if byPartition[record.partition] != nil { byPartition[record.partition]!.append(record) }
        }
        return byPartition
    }

    /// `store(_:claiming:)`: in one transaction, writes (replaces) the rows of the partitions
    /// the claim still holds (owner and epoch in `cluster_partitions`, the claimed incarnation's
    /// lease live) and returns the others, unwritten.
    func store(_ batch: [StoredRecord], claim: OwnershipClaim, now: Int64) -> PartitionSet {
        let rows = batch.lastPerIdentity()
        guard !rows.isEmpty else { return PartitionSet() }
        let partitions = PartitionSet(rows.map(\.partition))
        var held = PartitionSet()
        let leaseLive = isLive(claim.node, incarnation: claim.incarnation, now: now)
        for partition in partitions {
            if !fencing {
                held.insert(partition)
                continue
            }
            guard leaseLive, let epoch = claim.epochs[partition], let table else { continue }
            let assignment = table.assignment(of: partition)
            if assignment.owner == claim.node && assignment.epoch == epoch { held.insert(partition) }
        }
        for row in rows where held.contains(row.partition) {
            records[row.identity] = row
            let assignment = table?.assignment(of: row.partition)
            history[row.identity, default: []].append(Commit(
                time: now, node: claim.node, record: row, epochAtCommit: assignment?.epoch ?? 0, ownerAtCommit: assignment?.owner))
        }
        return PartitionSet(partitions.filter { !held.contains($0) })
    }

    func sortedIdentities() -> [RecordIdentity] {
        records.keys.sorted { ($0.key, $0.kind.rawValue) < ($1.key, $1.kind.rawValue) }
    }
}
