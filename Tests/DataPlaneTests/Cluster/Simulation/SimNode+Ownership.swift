@testable import DataPlane
import TopGunCore

/// `PartitionOwnership`: applying a table (fence and hand over what was lost, load what was
/// gained), retrying failed loads, and giving everything up when the lease is lost. The
/// actor's operations run one at a time here (the actor can interleave them at its awaits;
/// the simulation serializes them, which is one of its simplifications).
enum OwnershipOperation {
    case apply(PartitionTable, completesRefresh: Bool)
    case retryUnheld(completesRefresh: Bool)
    case relinquishAll
}

/// The state of the operation under way.
struct OwnershipRun {
    var operation: OwnershipOperation
    /// Lost partitions still to fence and drop.
    var lost: [Int]
    /// The lost partition whose fence waits for flushes that may still commit its rows.
    var fencing: (partition: Int, dropped: [StoredRecord], flights: Set<UInt64>)?
    /// Gained partitions and the epoch each is promoted under.
    var gained: [(partition: Int, epoch: Int64)]
    /// The rows of the copies taken for the gained partitions (`ReplicaHolder.take`).
    var copies: [Int: [StoredRecord]] = [:]
}

extension SimNode {
    func enqueueOwnership(_ operation: OwnershipOperation) {
        ownershipQueue.append(operation)
        if ownershipRun == nil { startNextOwnership() }
    }

    private func startNextOwnership() {
        guard ownershipRun == nil, !ownershipQueue.isEmpty else { return }
        let operation = ownershipQueue.removeFirst()
        switch operation {
        case .apply(let next, _):
            if let appliedVersion, next.version < appliedVersion { return finishOwnership(operation) }
            let (gained, lost) = OwnershipChange.between(held: held, next: next, node: id)
            // Gained partitions are refused until loaded, lost ones routed away, from now on.
            for partition in gained { unloaded.insert(partition) }
            install(next)
            let previous = appliedVersion
            appliedVersion = next.version
            world.log("\(id) applies table v\(next.version) (after \(previous.map { "v\($0)" } ?? "none")): gained \(gained.count), lost \(lost.count), owns \(next.partitions(ownedBy: id).count), held \(held.count)")
            ownershipRun = OwnershipRun(
                operation: operation, lost: lost, gained: gained.map { ($0, next.assignment(of: $0).epoch) })
            continueLost()
        case .retryUnheld:
            guard appliedVersion != nil else { return finishOwnership(operation) }
            let unheld = table.partitions(ownedBy: id).filter { held[$0] != table.assignment(of: $0).epoch }
            ownershipRun = OwnershipRun(operation: operation, lost: [], gained: unheld.map { ($0, table.assignment(of: $0).epoch) })
            promoteGained()
        case .relinquishAll:
            let partitions = held.keys.sorted()
            ownershipRun = OwnershipRun(operation: operation, lost: partitions, gained: [])
            continueLost()
        }
    }

    /// Fences and drops the lost partitions one by one; a fence waits for the flushes that
    /// carry the partition's rows (`WriteBehindQueue.fence` awaits their tasks).
    func continueLost() {
        guard var run = ownershipRun, run.fencing == nil else { return }
        while !run.lost.isEmpty {
            let partition = run.lost.removeFirst()
            held[partition] = nil
            if case .relinquishAll = run.operation { unloaded.insert(partition) }
            let fence = writeBehind.fence(partition, now: SimInstant(ms: now))
            resume(fence.resumptions)
            reconcileWriteBehind()
            let flights = Set(fence.flightsToAwait.filter { flushCalls[$0] != nil })
            if !flights.isEmpty {
                run.fencing = (partition, fence.dropped, flights)
                ownershipRun = run
                return
            }
            finishLost(partition, dropped: fence.dropped)
        }
        ownershipRun = run
        startGained()
    }

    /// A flush landed: a fence waiting for it may go on.
    func flightLanded(_ flush: UInt64) {
        guard var run = ownershipRun, var fencing = run.fencing, fencing.flights.contains(flush) else { return }
        fencing.flights.remove(flush)
        guard fencing.flights.isEmpty else {
            run.fencing = fencing
            ownershipRun = run
            return
        }
        run.fencing = nil
        ownershipRun = run
        finishLost(fencing.partition, dropped: fencing.dropped)
        continueLost()
    }

    /// The partition's memory goes; its rows not written here go to its new owner.
    private func finishLost(_ partition: Int, dropped: [StoredRecord]) {
        memory[partition] = nil
        unloaded.insert(partition)
        let rows = writeBehind.withoutPurgedTenants(dropped + writeBehind.takeFencedLeftovers(partition))
        if !rows.isEmpty {
            world.log("\(id) hands \(rows.count) rows of lost partition \(partition) over")
            handOverDisplaced(rows)
        }
    }

    private func startGained() {
        guard let run = ownershipRun else { return }
        if case .relinquishAll = run.operation {
            appliedVersion = nil
            return finishOwnership(run.operation)
        }
        // What memory held of it is stale (another node owned it meanwhile, or never loaded).
        for (partition, _) in run.gained {
            memory[partition] = nil
            unloaded.insert(partition)
            writeBehind.unfence(partition)
        }
        promoteGained()
    }

    /// `promote`: the committed rows from storage merged with this node's copy as a backup;
    /// the copy's rows the old owner never reported persisted are written. The loads of all
    /// gained partitions are one request here (one per partition in production: with
    /// fencing, nobody else writes them meanwhile, so the difference cannot be seen).
    private func promoteGained() {
        guard var run = ownershipRun else { return }
        guard !run.gained.isEmpty else { return finishPromotions() }
        for (partition, _) in run.gained {
            if let copy = takenCopies.removeValue(forKey: partition) ?? takeCopy(partition) { run.copies[partition] = copy }
        }
        ownershipRun = run
        call(database: .load(run.gained.map(\.partition)), continuation: .load)
    }

    func loaded(_ result: SimResult) {
        guard let run = ownershipRun else { return }
        guard case .rows(let byPartition) = result else {
            // Stays unloaded (requests refused) and is loaded again at the next refresh.
            for (partition, copy) in run.copies { takenCopies[partition] = copy }
            return finishPromotions()
        }
        for (partition, epoch) in run.gained {
            let stored = byPartition[partition] ?? []
            var rows = memory[partition] ?? [:]
            for row in stored { _ = SimRecords.merge(row, into: &rows) }
            if let copy = run.copies[partition] {
                for row in copy { _ = SimRecords.merge(row, into: &rows) }
                // Production's own function: what the copy holds that storage lacks or holds
                // an older state of, merged with the stored state.
                let missing = PartitionOwnership.newerThanStored(copy, stored: stored)
                if !missing.isEmpty {
                    world.log("\(id) promoted partition \(partition) (epoch \(epoch)): writes \(missing.count) rows of its copy storage lacks")
                    memory[partition] = rows
                    _ = enqueueDurably(missing, touching: PartitionSet())
                }
            }
            memory[partition] = rows
            unloaded.remove(partition)
            held[partition] = epoch
        }
        finishPromotions()
    }

    private func finishPromotions() {
        guard let run = ownershipRun else { return }
        if case .apply = run.operation {
            replicaHolderTableChanged()
            replicatorTableChanged()
        }
        finishOwnership(run.operation)
    }

    private func finishOwnership(_ operation: OwnershipOperation) {
        ownershipRun = nil
        switch operation {
        case .apply(_, let completesRefresh), .retryUnheld(let completesRefresh):
            if completesRefresh { refreshDone() }
        case .relinquishAll:
            reacquireAfterRelinquish()
        }
        startNextOwnership()
    }

    /// `isServing`: a table naming this node applied, and every partition it owns held.
    var isServing: Bool {
        guard appliedVersion != nil, ownershipRun == nil else { return false }
        return table.members.contains { $0.id == id }
            && table.partitions(ownedBy: id).allSatisfy { held[$0] == table.assignment(of: $0).epoch }
    }
}
