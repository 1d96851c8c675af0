import Logging
import TopGunCore

/// The backup's side (design.md §6 step 5): applies the owners' batches to its copies
/// (`BackupReplicas`), refusing those of a deposed owner, and hands a copy over when this
/// node is promoted. When a partition's owner changes and this node is not the new one, the
/// rows of its copy that the old owner never reported committed go to the new owner (they may
/// have been acknowledged to a client at REPLICATED, and exist nowhere else).
public actor ReplicaHolder {
    private var replicas = BackupReplicas()
    /// Whose changes a copy follows: the owner, and the batch numbering of the owner's run
    /// (a restarted owner numbers its batches from 1 again; its commit watermark says nothing
    /// of its previous run's batches).
    struct Source: Equatable {
        var owner: NodeID
        var stream: String
    }

    /// The source each copy follows.
    private var followed: [Int: Source] = [:]
    private let table: CurrentPartitionTable
    private let localNode: NodeID
    private let handOver: @Sendable ([StoredRecord]) async -> Void
    private let logger: Logger

    public init(table: CurrentPartitionTable, handOver: @escaping @Sendable ([StoredRecord]) async -> Void, logger: Logger) {
        self.table = table
        self.localNode = table.localNode
        self.handOver = handOver
        self.logger = logger
    }

    /// Applies `batch` from `owner`; throws when this node knows a newer owner of one of
    /// its partitions (the sender is deposed: its write is not replicated).
    func receive(_ batch: ReplicaBatch, from owner: NodeID) throws {
        let current = table.table
        let source = Source(owner: owner, stream: batch.stream)
        var toHandOver: [StoredRecord] = []
        defer {
            // A copy that now follows a newer owner (its batch came before its table): the
            // rows the old owner never reported committed go to the new owner, as at a table
            // change (batch numbers are per owner: the new one's cannot clear them).
            if !toHandOver.isEmpty {
                let rows = toHandOver
                let handOver = self.handOver
                Task { await handOver(rows) }
            }
        }
        for part in batch.parts {
            if let copy = replicas.copies[part.partition], part.epoch > copy.epoch, let taken = replicas.take(part.partition) {
                toHandOver += taken.unpersisted
                followed[part.partition] = nil
            }
            // A table newer than the sender's: the sender no longer owns the partition.
            let known = current.assignment(of: part.partition)
            if known.epoch > part.epoch {
                throw ClusterMessageError("partition \(part.partition) has a newer owner (epoch \(known.epoch) > \(part.epoch))")
            }
            // Under the epoch this node knows, only as a replica its table names: a copy taken
            // while an older table is applied would be dropped when that apply ends, and the
            // owner, which counts it sent, would not send it again. The owner retries, and
            // is answered once this node has applied the table it acts on. (A newer epoch
            // means this node's table is behind: the copy is kept until a table as new says.)
            if known.epoch == part.epoch, !known.replicas.contains(localNode) {
                throw ClusterMessageError("partition \(part.partition) does not name this node a replica in table \(current.version)")
            }
            switch replicas.apply(partition: part.partition, epoch: part.epoch, batch: batch.batch, rows: part.rows, completesSnapshot: part.completesSnapshot) {
            case .applied:
                followed[part.partition] = source
            case .staleEpoch(let current):
                throw ClusterMessageError("partition \(part.partition) follows a newer owner (epoch \(current) > \(part.epoch))")
            }
        }
        for (partition, follows) in followed where follows == source {
            if let epoch = replicas.copies[partition]?.epoch {
                replicas.persisted(partition: partition, epoch: epoch, through: batch.persistedThrough)
            }
        }
    }

    /// The rows of the copy of `partition` the owner has not reported committed, in key
    /// order; nil without a copy.
    func uncommitted(_ partition: Int) -> [StoredRecord]? {
        guard let copy = replicas.copies[partition] else { return nil }
        return copy.unpersisted.keys.compactMap { copy.rows[$0] }.sorted { $0.key < $1.key }
    }

    /// Gives up the copy of `partition` (this node now owns it) and returns its rows.
    func take(_ partition: Int) -> [StoredRecord]? {
        followed[partition] = nil
        return replicas.take(partition)?.rows
    }

    /// After a new table: copies of partitions this node no longer backs up are dropped, and
    /// those whose owner changed are handed to the new owner first (their uncommitted rows).
    func tableChanged() async {
        let current = table.table
        var toHandOver: [StoredRecord] = []
        for (partition, copy) in replicas.copies {
            let assignment = current.assignment(of: partition)
            if assignment.owner == localNode { continue }  // promotion takes it
            // A table older than the copy (applied late): a newer one decides.
            if assignment.epoch < copy.epoch { continue }
            if assignment.epoch > copy.epoch {
                if let taken = replicas.take(partition) { toHandOver += taken.unpersisted }
                followed[partition] = nil
            } else if !assignment.replicas.contains(localNode) {
                // Its uncommitted rows go to the owner all the same: they may be acknowledged
                // at REPLICATED and exist nowhere else (the owner crashed since).
                if let taken = replicas.take(partition) { toHandOver += taken.unpersisted }
                followed[partition] = nil
            }
        }
        if !toHandOver.isEmpty {
            logger.info("handing uncommitted rows of copies to the partitions' new owners", metadata: ["rows": "\(toHandOver.count)"])
            await handOver(toHandOver)
        }
    }
}
