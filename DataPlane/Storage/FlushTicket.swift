import TopGunCore

/// Names one `WriteBehindQueue.enqueue` call and the partitions it touched: its writes are
/// durable once every row of those partitions enqueued up to and including this ticket has
/// been committed. Tickets of one queue increase with each call. Naming the partitions is
/// what lets one partition's acknowledgements go while another's rows wait (a slow or
/// fenced partition holds back only the writes that touched it).
public struct FlushTicket: Hashable, Sendable, CustomStringConvertible {
    public let sequence: UInt64
    /// The partitions whose rows this ticket waits for.
    public let partitions: PartitionSet
    /// On a node of a cluster: the replication batch that sent the same rows to the
    /// partitions' backups (`Replicator`), nil where nothing replicates.
    public var replicationBatch: UInt64?
    /// What an acknowledgement waits for with this ticket: the backups (REPLICATED) rather
    /// than the commit (PERSISTED).
    public var awaitsReplication = false
    /// On a node of a cluster: the lease term the write was taken in (`LeaseWatch`); nil when
    /// the lease was not held then.
    public var leaseTerm: UInt64?
    /// On a node of a cluster: the term of reaching a majority of the table's nodes the write
    /// was taken in (`QuorumWatch`); nil when it was not reached then.
    public var quorumTerm: UInt64?
    /// On a node of a cluster: the epoch of each partition of the write, as this node owned
    /// it when it took the write (`ClusterDurability`).
    public var ownedEpochs: [Int: Int64] = [:]

    @inlinable
    public init(sequence: UInt64, partitions: PartitionSet = .all) {
        self.sequence = sequence
        self.partitions = partitions
    }

    /// The same ticket, to wait for its backups instead of its commit.
    public var awaitingReplication: FlushTicket {
        var ticket = self
        ticket.awaitsReplication = true
        return ticket
    }

    public var description: String { "ticket \(sequence) \(partitions)" + (replicationBatch.map { " replication \($0)" } ?? "") }
}
