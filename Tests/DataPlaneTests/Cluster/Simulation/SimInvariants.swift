@testable import DataPlane
import TopGunCore

/// The properties every run must have at its end (issue 14, point 9). Each check returns the
/// first violation it finds, described well enough to start debugging from.
enum SimInvariants {
    struct Violation: Error, CustomStringConvertible {
        var invariant: String
        var detail: String
        var description: String { "\(invariant): \(detail)" }
    }

    /// The first violation of each invariant, in order (empty: the run is correct).
    static func check(_ world: SimWorld) -> [Violation] {
        var violations: [Violation] = []
        if let failure = world.livenessFailure {
            violations.append(Violation(invariant: "(0) no busy loop", detail: failure))
        }
        if world.phase == .stuck {
            violations.append(Violation(invariant: "(0) the cluster settles", detail: world.stuckReason ?? "not settled"))
        }
        return violations + [
            singleWriterPerEpoch(world), replicatedUnderLease(world), acknowledgedWithAMajority(world), noAcknowledgedWriteLost(world),
            replicasConverge(world),
        ].compactMap { $0 }
    }

    /// (1) Per partition and epoch, at most one node acknowledged writes, and at most one
    /// node committed rows (the epoch in the database when they were written).
    static func singleWriterPerEpoch(_ world: SimWorld) -> Violation? {
        var ackers: [String: (NodeID, SimAck)] = [:]
        for ack in world.acks {
            let write = world.writes[ack.write]
            let slot = "partition \(write.partition) epoch \(ack.epoch)"
            if let (other, first) = ackers[slot], other != ack.acker {
                return Violation(
                    invariant: "(1) one acknowledging node per partition and epoch",
                    detail: "\(slot): \(other) acknowledged write #\(first.write) at \(first.time)ms and \(ack.acker) acknowledged \(write.summary) at \(ack.time)ms")
            }
            ackers[slot] = (ack.acker, ack)
        }
        var writers: [String: SimDatabase.Commit] = [:]
        for identity in world.database.history.keys.sorted(by: { $0.key < $1.key }) {
            for commit in world.database.history[identity]! {
                let slot = "partition \(commit.record.partition) epoch \(commit.epochAtCommit)"
                if let first = writers[slot], first.node != commit.node {
                    return Violation(
                        invariant: "(1) one committing node per partition and epoch",
                        detail: "\(slot): \(first.node) committed \(first.record.key.key) at \(first.time)ms and \(commit.node) committed \(commit.record.key.key) at \(commit.time)ms (owner then: \(commit.ownerAtCommit?.rawValue ?? "none"))")
                }
                writers[slot] = writers[slot] ?? commit
            }
        }
        return nil
    }

    /// (1) A write acknowledged once its replicas applied it (REPLICATED) was acknowledged
    /// only if its owner's lease held at the database, in one run, from the write to the
    /// acknowledgement (design.md §6): in a gap, another node may have taken the partition
    /// over. (PERSISTED is fenced by the database itself.)
    static func replicatedUnderLease(_ world: SimWorld) -> Violation? {
        for ack in world.acks where ack.facts.viaReplicas {
            guard !world.database.leaseHeld(by: ack.acker, from: ack.facts.appliedAt, through: ack.facts.durableAt) else { continue }
            let write = world.writes[ack.write]
            let spans = (world.database.leaseSpans[ack.acker] ?? []).map { "\($0.start)–\($0.end)ms" }
            return Violation(
                invariant: "(1) REPLICATED acknowledged only under a lease held throughout",
                detail: "\(write.summary) applied by \(ack.acker) at \(ack.facts.appliedAt)ms (epoch \(ack.epoch)) and acknowledged at \(ack.facts.durableAt)ms; its lease was live at the database in \(spans.suffix(4))")
        }
        return nil
    }

    /// (1) Split-brain safety: no write is acknowledged (PERSISTED or REPLICATED) by a node that
    /// had been cut off from most of its table's nodes for a whole quorum window by then.
    static func acknowledgedWithAMajority(_ world: SimWorld) -> Violation? {
        for ack in world.acks where ack.facts.cutOffFromMajority {
            return Violation(
                invariant: "(1) acknowledged only by a node reaching a majority",
                detail: "\(world.writes[ack.write].summary) acknowledged by \(ack.acker) at \(ack.facts.durableAt)ms, cut off from most of its table's nodes for a quorum window by then")
        }
        return nil
    }

    /// (2) The database holds every acknowledged write (or a newer state of its row). A
    /// REPLICATED write lives in memory (its owner's and its replicas') until committed:
    /// losing it is excused only when more nodes crashed meanwhile than it had replicas, which
    /// can take the owner and every replica.
    static func noAcknowledgedWriteLost(_ world: SimWorld) -> Violation? {
        for ack in world.acks {
            let write = world.writes[ack.write]
            let stored = world.database.records[write.identity]?.value
            if write.isCovered(by: stored) { continue }
            let history = world.database.history[write.identity] ?? []
            let firstDurable = history.first { write.isCovered(by: $0.record.value) }?.time ?? .max
            let crashed = Set(world.crashes.filter { $0.time >= ack.facts.durableAt && $0.time < firstDurable }.map(\.node))
            // Held by the owner and its replicas until committed: lost only past that many
            // crashes (with no replica named, REPLICATED waits for the commit).
            if !write.persisted, ack.facts.replicas > 0, crashed.count > ack.facts.replicas { continue }
            return Violation(
                invariant: "(2) no acknowledged write lost",
                detail: "\(write.summary) acknowledged by \(ack.acker) (epoch \(ack.epoch)) at \(ack.time)ms; the database holds \(describe(stored))"
                    + (firstDurable == .max ? ", and never held it" : ", which overwrote it after \(firstDurable)ms")
                    + (crashed.isEmpty ? "" : "; crashed meanwhile: \(crashed.map(\.rawValue).sorted())")
                    + "; commits of the row: " + history.suffix(6).map { "\($0.time)ms \($0.node) (epoch \($0.epochAtCommit)) \(write.isCovered(by: $0.record.value) ? "with" : "without") it" }.joined(separator: ", "))
        }
        return nil
    }

    /// (3) Each partition's owner, its backups' copies and the database hold the same rows
    /// (tombstones included) and the same Merkle leaves.
    static func replicasConverge(_ world: SimWorld) -> Violation? {
        guard let table = world.database.table else { return nil }
        var partitions = Set(world.database.records.values.map(\.partition))
        for node in world.nodes.compactMap({ $0 }) {
            partitions.formUnion(node.memory.filter { !$0.value.isEmpty }.keys)
            partitions.formUnion(node.replicas.copies.filter { !$0.value.rows.isEmpty }.keys)
        }
        for partition in partitions.sorted() {
            let assignment = table.assignment(of: partition)
            let stored = world.database.records.values.filter { $0.partition == partition }
            guard let owner = world.nodes[world.index(of: assignment.owner)] else { continue }
            let owned = Array((owner.memory[partition] ?? [:]).values)
            if let difference = compare(stored, owned) {
                return Violation(
                    invariant: "(3) owner and database converge",
                    detail: "partition \(partition) (owner \(owner.id), epoch \(assignment.epoch)): \(difference) [database vs owner]")
            }
            for backup in assignment.backups {
                let copy = world.nodes[world.index(of: backup)]?.replicas.copies[partition]
                if let difference = compare(owned, Array((copy?.rows ?? [:]).values)) {
                    return Violation(
                        invariant: "(3) owner and backups converge",
                        detail: "partition \(partition) (owner \(owner.id), epoch \(assignment.epoch)), backup \(backup): \(difference) [owner vs backup]")
                }
            }
        }
        return nil
    }

    private static func compare(_ a: [StoredRecord], _ b: [StoredRecord]) -> String? {
        let left = SimRecords.values(a)
        let right = SimRecords.values(b)
        if left != right {
            let identities = Set(left.keys).union(right.keys).sorted { $0.key < $1.key }
            for identity in identities where left[identity] != right[identity] {
                return "\(identity.key.mapName)/\(identity.key.key): \(describe(left[identity])) vs \(describe(right[identity]))"
            }
        }
        if SimRecords.merkleLeaves(a) != SimRecords.merkleLeaves(b) { return "Merkle leaves differ" }
        return nil
    }

    static func describe(_ value: StoredValue?) -> String {
        switch value {
        case nil: return "nothing"
        case .lww(let record)?: return record.isTombstone ? "tombstone \(record.timestamp)" : "value \(record.timestamp)"
        case .orMap(let entry)?: return "tags \(entry.records.map(\.tag)) tombstones \(entry.tombstones)"
        case .counter?: return "a counter"
        }
    }
}
