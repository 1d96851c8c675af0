import TopGunCore

/// The copies a backup keeps of the partitions it backs up (design.md §6, pure): every row
/// the owner changed, merged as it arrives (CRDT merge: order and repeats do not matter), so
/// that a promotion needs no reload. Each copy follows one owner under one epoch: a change
/// from an older epoch (a deposed owner) is refused.
///
/// A copy is complete once the owner's snapshot has arrived whole; rows not yet known to be
/// persisted by the owner are remembered, so that a promoted backup persists exactly those.
public struct BackupReplicas: Sendable {
    public struct Copy: Sendable {
        public var epoch: Int64
        public var rows: [RecordIdentity: StoredRecord] = [:]
        /// Rows changed by a batch the owner has not reported persisted: identity → batch.
        public var unpersisted: [RecordIdentity: UInt64] = [:]
        /// The owner's snapshot arrived whole.
        public var isComplete = false
    }

    public enum ApplyOutcome: Equatable, Sendable {
        case applied
        /// The batch's epoch is older than the copy's: its sender no longer owns the partition.
        case staleEpoch(current: Int64)
    }

    public private(set) var copies: [Int: Copy] = [:]

    public init() {}

    /// Merges a batch of the owner's changes (or of its snapshot) of `partition` under
    /// `epoch`. A newer epoch starts the copy over from the rows it has (merge keeps them
    /// valid: they are states the partition had) but not complete until the new owner's
    /// snapshot arrives.
    public mutating func apply(partition: Int, epoch: Int64, batch: UInt64, rows: [StoredRecord], completesSnapshot: Bool) -> ApplyOutcome {
        var copy = copies[partition] ?? Copy(epoch: epoch)
        if epoch < copy.epoch { return .staleEpoch(current: copy.epoch) }
        if epoch > copy.epoch {
            copy.epoch = epoch
            copy.isComplete = false
        }
        for row in rows where row.partition == partition {
            let identity = row.identity
            if let existing = copy.rows[identity] {
                guard let merged = existing.value.merging(row.value) else { continue }
                var updated = existing
                updated.value = merged
                updated.sequence = max(existing.sequence, row.sequence)
                copy.rows[identity] = updated
            } else {
                copy.rows[identity] = row
            }
            copy.unpersisted[identity] = batch
        }
        if completesSnapshot { copy.isComplete = true }
        copies[partition] = copy
        return .applied
    }

    /// The owner (under `epoch`) reports every change of `partition` up to `batch` persisted.
    public mutating func persisted(partition: Int, epoch: Int64, through batch: UInt64) {
        guard var copy = copies[partition], copy.epoch == epoch else { return }
        copy.unpersisted = copy.unpersisted.filter { $0.value > batch }
        copies[partition] = copy
    }

    /// Gives up the copy of `partition` and returns its rows, and those of them the owner
    /// never reported persisted (a promoted backup writes those).
    public mutating func take(_ partition: Int) -> (rows: [StoredRecord], unpersisted: [StoredRecord], isComplete: Bool)? {
        guard let copy = copies.removeValue(forKey: partition) else { return nil }
        let unpersisted = copy.unpersisted.keys.compactMap { copy.rows[$0] }
        return (Array(copy.rows.values), unpersisted, copy.isComplete)
    }

    /// Forgets the copy of `partition` (this node no longer backs it up).
    public mutating func drop(_ partition: Int) {
        copies[partition] = nil
    }

    /// Whether the copy of `partition` is complete and follows the owner of `epoch`.
    public func isComplete(_ partition: Int, epoch: Int64) -> Bool {
        copies[partition].map { $0.isComplete && $0.epoch == epoch } ?? false
    }
}
