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

    @inlinable
    public init(sequence: UInt64, partitions: PartitionSet = .all) {
        self.sequence = sequence
        self.partitions = partitions
    }

    public var description: String { "ticket \(sequence) \(partitions)" }
}
