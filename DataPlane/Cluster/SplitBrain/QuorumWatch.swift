import Synchronization
import TopGunCore

/// Whether this node reaches a majority of the nodes of its partition table (split-brain
/// safety, design.md §6): a node cut off from most of its cluster stops acknowledging
/// `PERSISTED` and `REPLICATED` writes and says so in `/ready`, rather than acknowledging
/// writes the rest of the cluster may never see. A peer counts as reachable when it answered
/// a ping (`PeerPinger`) within `window` (Hazelcast's "recently active" rule); this node always
/// counts itself. A table of one node always has its majority.
///
/// Like `LeaseWatch`, each unbroken stretch of holding a majority is a term, and a write is
/// acknowledged only if its whole wait fell in the term it was taken in.
public final class QuorumWatch: Sendable {
    private struct State {
        var members: Set<NodeID> = []
        /// Nanoseconds since the origin of each peer's last answer.
        var lastHeard: [NodeID: Int64] = [:]
        var held = false
        var term: UInt64 = 0
    }

    public let localNode: NodeID
    private let window: Duration
    private let elapsed: @Sendable () -> Duration
    private let state = Mutex(State())

    public convenience init(localNode: NodeID, window: Duration) {
        let origin = ContinuousClock.now
        self.init(localNode: localNode, window: window, elapsed: { ContinuousClock.now - origin })
    }

    init(localNode: NodeID, window: Duration, elapsed: @escaping @Sendable () -> Duration) {
        self.localNode = localNode
        self.window = window
        self.elapsed = elapsed
    }

    /// The nodes of the table this node follows (itself included, or not yet).
    public func members(_ nodes: some Sequence<NodeID>) {
        let now = Self.nanoseconds(elapsed())
        state.withLock { state in
            state.members = Set(nodes)
            evaluate(&state, now: now)
        }
    }

    /// `node` answered now.
    public func heard(from node: NodeID) {
        let now = Self.nanoseconds(elapsed())
        state.withLock { state in
            // A lapse that ends with this answer still ends the term it broke.
            evaluate(&state, now: now)
            state.lastHeard[node] = now
            evaluate(&state, now: now)
        }
    }

    /// The term under way, or nil while this node does not reach a majority.
    public var currentTerm: UInt64? {
        let now = Self.nanoseconds(elapsed())
        return state.withLock { state in
            evaluate(&state, now: now)
            return state.held ? state.term : nil
        }
    }

    public var isHeld: Bool { currentTerm != nil }

    /// Whether a majority is reached now and has been since `term` began.
    public func isHeld(throughout term: UInt64?) -> Bool {
        guard let term else { return false }
        return currentTerm == term
    }

    /// How many of the table's nodes this node reaches (itself included), and how many it has.
    public var reach: (reachable: Int, members: Int) {
        let now = Self.nanoseconds(elapsed())
        return state.withLock { state in (self.reachable(state, now: now, window: Self.nanoseconds(window)), max(state.members.count, 1)) }
    }

    private func evaluate(_ state: inout State, now: Int64) {
        let members = max(state.members.count, 1)
        let holds = 2 * reachable(state, now: now, window: Self.nanoseconds(window)) > members
        if holds, !state.held { state.term += 1 }
        state.held = holds
    }

    private func reachable(_ state: State, now: Int64, window: Int64) -> Int {
        1 + state.members.filter { member in
            guard member != localNode, let heard = state.lastHeard[member] else { return false }
            return now - heard < window
        }.count
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
