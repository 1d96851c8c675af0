/// Names one `WriteBehindQueue.enqueue` call: its records are durable once every record
/// enqueued up to and including this ticket has been committed. Tickets of one queue
/// increase with each call.
public struct FlushTicket: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let sequence: UInt64

    @inlinable
    public init(sequence: UInt64) { self.sequence = sequence }

    @inlinable
    public static func < (lhs: FlushTicket, rhs: FlushTicket) -> Bool { lhs.sequence < rhs.sequence }

    public var description: String { "ticket \(sequence)" }
}
