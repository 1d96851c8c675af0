/// The receiving side's check of one peer's stream (pure): were messages lost between the
/// last one and this one?
///
/// A sender's stream has a random id, fixed for the sender's run; its messages are numbered
/// 1, 2, 3… within a *generation*, and the sender starts the next generation (numbering from
/// 1 again) whenever it may have lost a message: a send that failed, or a queue that
/// overflowed. So a message is the next one only if it continues the generation last seen; a
/// later generation, a number skipped, or another stream id (the sender restarted and lost
/// its state) is a gap; and the first message from a peer is a gap unless it opens its stream
/// (generation 0, number 1). The connection is TCP, so a gap means pushes were lost, never
/// reordered; what was lost cannot be known, so the receiver treats everything it relied on
/// from that peer as lost (`ClusterStreamInbox`).
struct StreamSequence: Sendable, Equatable {
    enum Verdict: Sendable, Equatable {
        /// Continues the stream: deliver it.
        case next
        /// Messages were lost before this one: deliver it, after handling the loss.
        case gap
        /// Seen already: drop it.
        case repeated
    }

    struct Position: Sendable, Equatable {
        var stream: UInt64
        var generation: UInt64
        var sequence: UInt64
    }

    private var last: Position?

    init() {}

    mutating func accept(_ position: Position) -> Verdict {
        guard let last else {
            self.last = position
            return position.generation == 0 && position.sequence == 1 ? .next : .gap
        }
        guard last.stream == position.stream else {
            self.last = position
            return .gap
        }
        if (position.generation, position.sequence) <= (last.generation, last.sequence) { return .repeated }
        self.last = position
        return position.generation == last.generation && position.sequence == last.sequence &+ 1 ? .next : .gap
    }
}
