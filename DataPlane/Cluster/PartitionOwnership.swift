import Logging
import TopGunCore

/// What a node does when a new partition table arrives: it stops serving and writing the
/// partitions it lost, and loads the ones it gained, before serving them (design.md §6).
///
/// A partition counts as held under an epoch: a partition that came back to this node under
/// a newer epoch was owned by another node meanwhile, so what this node has in memory is
/// stale; it is dropped and loaded again like any gained partition.
public actor PartitionOwnership {
    public nonisolated let localNode: NodeID
    private let table: CurrentPartitionTable
    private let partitions: LocalPartitions
    private let writeBehind: WriteBehindQueue
    private let storage: any ServerStorage
    /// Where the rows of lost partitions that were not written go (to their new owner).
    private let displaced: @Sendable ([StoredRecord]) async -> Void
    private let logger: Logger
    /// Per partition held here (loaded, served), the epoch it is held under.
    private var held: [Int: Int64] = [:]
    /// One change of ownership at a time: whether one runs, and who waits for it.
    private var gateBusy = false
    private var gateWaiters: [CheckedContinuation<Void, Never>] = []

    private func enterGate() async {
        guard gateBusy else {
            gateBusy = true
            return
        }
        await withCheckedContinuation { gateWaiters.append($0) }
    }

    private func leaveGate() {
        if gateWaiters.isEmpty {
            gateBusy = false
        } else {
            gateWaiters.removeFirst().resume()
        }
    }
    /// The version of the last table applied (nil: none yet).
    public private(set) var appliedVersion: Int64?

    /// Copies kept as a backup (a promotion starts from one) and the sender of this node's
    /// changes to its backups; both follow each table applied.
    private var replicas: ReplicaHolder?
    private var replicator: Replicator?
    /// Where the rows a promoted copy holds uncommitted are written (and replicated).
    private var durability: (any DurabilityPipeline)?

    /// Called for each partition this node takes over once its rows are loaded, before it is
    /// served: what else the partition holds (its locks) is restored first, so that no
    /// request finds it empty (a lock granted there would ignore its previous holder).
    private var promoted: (@Sendable (Int) async -> Void)?

    func onPromotion(_ hook: @escaping @Sendable (Int) async -> Void) {
        promoted = hook
    }

    /// Attaches the replication parts (made after this actor, since they need the node's
    /// parts too).
    public func attach(replicas: ReplicaHolder, replicator: Replicator, durability: any DurabilityPipeline) {
        self.replicas = replicas
        self.replicator = replicator
        self.durability = durability
    }

    public init(
        table: CurrentPartitionTable, partitions: LocalPartitions, writeBehind: WriteBehindQueue, storage: any ServerStorage,
        displaced: @escaping @Sendable ([StoredRecord]) async -> Void, logger: Logger
    ) {
        self.localNode = table.localNode
        self.table = table
        self.partitions = partitions
        self.writeBehind = writeBehind
        self.storage = storage
        self.displaced = displaced
        self.logger = logger
    }

    /// Whether the node has applied a table that names it and holds every partition it owns.
    public var isServing: Bool {
        guard appliedVersion != nil else { return false }
        let current = table.table
        return current.members.contains { $0.id == localNode }
            && current.partitions(ownedBy: localNode).allSatisfy { held[$0] == current.assignment(of: $0).epoch }
    }

    /// Partitions held here now.
    public var heldPartitions: [Int] { held.keys.sorted() }

    /// Applies `next` unless an equal or newer table was applied: first routes by it (so
    /// new requests for lost partitions go to their owners and those for gained ones wait),
    /// then fences and drops what was lost, then loads what was gained. A partition whose
    /// load fails stays unloaded (requests for it are refused with 503) and is loaded again
    /// at the next call. Returns what changed.
    @discardableResult
    public func apply(_ next: PartitionTable) async -> (gained: [Int], lost: [Int]) {
        // One table at a time: an actor lets a second call in while the first awaits storage,
        // and two interleaved applies would both take (or both give up) the same partitions.
        await enterGate()
        defer { leaveGate() }
        if let appliedVersion, next.version < appliedVersion { return ([], []) }
        let (gained, lost) = OwnershipChange.between(held: held, next: next, node: localNode)
        // Gained partitions are refused until loaded, lost ones routed away, from now on.
        for partition in gained { partitions.maps.unloaded.insert(partition) }
        table.install(next)
        appliedVersion = next.version
        for partition in lost {
            held[partition] = nil
            let rows = await writeBehind.fence(partition: partition)
            await partitions.drop(partition)
            if !rows.isEmpty {
                logger.notice("handing rows of a lost partition to its owner", metadata: ["partition": "\(partition)", "rows": "\(rows.count)"])
                await displaced(rows)
            }
        }
        for partition in gained {
            // What memory held of it is stale (another node owned it meanwhile, or never loaded).
            await partitions.drop(partition)
            await writeBehind.unfence(partition: partition)
            if await promote(partition, epoch: next.assignment(of: partition).epoch) {
                held[partition] = next.assignment(of: partition).epoch
            }
        }
        await replicas?.tableChanged()
        await replicator?.tableChanged()
        if !gained.isEmpty || !lost.isEmpty {
            logger.info("partition table applied", metadata: [
                "version": "\(next.version)", "gained": "\(gained.count)", "lost": "\(lost.count)", "held": "\(held.count)",
            ])
        }
        return (gained, lost)
    }

    /// Copies taken for a promotion whose load failed, kept for the next attempt.
    private var takenCopies: [Int: [StoredRecord]] = [:]

    /// Makes `partition` served here under `epoch`: its committed rows from storage (one
    /// indexed read), merged with this node's copy as a backup, if it kept one. Both are
    /// needed: the previous owner may have committed rows it had not sent to the copy yet
    /// when ownership flipped, and the copy may hold rows (acknowledged at REPLICATED, or
    /// handed over) that were never committed: whatever it holds that storage lacks, or holds
    /// an older state of, is written now, so memory never holds a row that is neither stored
    /// nor queued. What the previous owner had neither committed nor replicated comes from it
    /// as displaced rows. False when storage could not be read (tried again later).
    private func promote(_ partition: Int, epoch: Int64) async -> Bool {
        var copy = takenCopies.removeValue(forKey: partition)
        if copy == nil { copy = await replicas?.take(partition) }
        do {
            let stored = try await storage.loadPartition(partition)
            await partitions.install(stored)
            var written = 0
            if let copy {
                await partitions.install(copy)
                let missing = Self.newerThanStored(copy, stored: stored)
                written = missing.count
                if !missing.isEmpty, let durability { _ = await durability.enqueue(missing) }
            }
            await promoted?(partition)
            partitions.maps.unloaded.remove(partition)
            logger.debug("partition promoted", metadata: [
                "partition": "\(partition)", "epoch": "\(epoch)", "storedRows": "\(stored.count)",
                "copyRows": "\(copy.map { "\($0.count)" } ?? "none")", "copyRowsWritten": "\(written)",
            ])
        } catch {
            takenCopies[partition] = copy
            logger.error("could not load a gained partition; it stays unavailable until it loads", metadata: [
                "partition": "\(partition)", "error": "\(error)",
            ])
            return false
        }
        return true
    }

    /// The rows of `copy` that `stored` lacks or holds an older state of, each merged with
    /// the stored state: what storage must hold afterwards (a flush replaces a stored row, so
    /// the merged state, never the copy's alone).
    static func newerThanStored(_ copy: [StoredRecord], stored: [StoredRecord]) -> [StoredRecord] {
        var byIdentity: [RecordIdentity: StoredRecord] = [:]
        for row in stored { byIdentity[row.identity] = row }
        var missing: [StoredRecord] = []
        for row in copy {
            guard let existing = byIdentity[row.identity] else {
                var fresh = row
                fresh.mayExistInStorage = false
                missing.append(fresh)
                continue
            }
            if let merged = existing.value.merging(row.value) {
                var updated = existing
                updated.value = merged
                updated.sequence = max(existing.sequence, row.sequence)
                missing.append(updated)
            }
        }
        return missing
    }

    /// Loads owned partitions that are not held yet (a failed load, retried).
    public func retryUnheld() async {
        await enterGate()
        defer { leaveGate() }
        // Nothing applied (everything was relinquished): the next `apply` loads what is owned,
        // after unfencing it; a promotion here would serve partitions whose rows are fenced.
        guard appliedVersion != nil else { return }
        let current = table.table
        for partition in current.partitions(ownedBy: localNode) where held[partition] != current.assignment(of: partition).epoch {
            guard await promote(partition, epoch: current.assignment(of: partition).epoch) else { return }
            held[partition] = current.assignment(of: partition).epoch
        }
    }

    /// Gives up every partition (the lease was lost: others own them now).
    public func relinquishAll() async {
        await enterGate()
        defer { leaveGate() }
        let partitionsHeld = held.keys.sorted()
        for partition in partitionsHeld {
            held[partition] = nil
            partitions.maps.unloaded.insert(partition)
            let rows = await writeBehind.fence(partition: partition)
            await partitions.drop(partition)
            if !rows.isEmpty { await displaced(rows) }
        }
        appliedVersion = nil
    }
}

/// A clustered node's claims: the epochs of the installed table, under this run's lease.
struct TableOwnershipClaims: OwnershipClaims {
    let table: CurrentPartitionTable
    let incarnation: SynchronizedBox<String>

    func claim(for partitions: PartitionSet) -> OwnershipClaim? {
        let current = table.table
        var epochs: [Int: Int64] = [:]
        for partition in partitions where current.owner(of: partition) == table.localNode {
            epochs[partition] = current.assignment(of: partition).epoch
        }
        return OwnershipClaim(node: table.localNode, incarnation: incarnation.get(), epochs: epochs)
    }
}

/// What a new table changes for one node (pure): the partitions it must give up and those it
/// must take, by epoch. A partition held under an older epoch than the table's, even one the
/// node owns again, was owned elsewhere meanwhile: it is both lost (its memory is stale) and
/// gained (loaded afresh).
public enum OwnershipChange {
    public static func between(held: [Int: Int64], next: PartitionTable, node: NodeID) -> (gained: [Int], lost: [Int]) {
        var gained: [Int] = []
        var lost: [Int] = []
        for partition in 0..<PartitionFunction.partitionCount {
            let assignment = next.assignment(of: partition)
            let owns = assignment.owner == node
            if let epoch = held[partition], !owns || epoch != assignment.epoch { lost.append(partition) }
            if owns && held[partition] != assignment.epoch { gained.append(partition) }
        }
        return (gained, lost)
    }
}

