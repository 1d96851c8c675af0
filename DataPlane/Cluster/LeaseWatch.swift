import Synchronization

/// Whether this node still holds its lease, judged locally from its last successful renewal
/// (design.md §6: REPLICATED is acknowledged only while the lease holds). The lease is
/// counted lost a heartbeat before it would expire at the database, so that a node never acts
/// on a lease the coordinator may already consider gone.
///
/// Each unbroken stretch of holding it is a term: a renewal after the lease counted as lost
/// starts a new one. A REPLICATED wait acknowledges only if its whole wait fell in the term it
/// started in: in a gap, another node may have taken the partition over.
public final class LeaseWatch: Sendable {
    private struct State {
        /// Nanoseconds since `origin` of the last renewal; nil before the first.
        var lastRenewal: Int64?
        var term: UInt64 = 0
    }

    private let state = Mutex(State())
    /// How long after a renewal the lease counts as held here.
    private let validFor: Duration
    /// Time since some fixed origin (the monotonic clock; a test's own).
    private let elapsed: @Sendable () -> Duration

    public convenience init(leaseDuration: Duration, heartbeatInterval: Duration) {
        let origin = ContinuousClock.now
        self.init(leaseDuration: leaseDuration, heartbeatInterval: heartbeatInterval, elapsed: { ContinuousClock.now - origin })
    }

    init(leaseDuration: Duration, heartbeatInterval: Duration, elapsed: @escaping @Sendable () -> Duration) {
        validFor = leaseDuration - heartbeatInterval
        self.elapsed = elapsed
    }

    /// The lease was taken or renewed now (the database answered).
    public func renewed() {
        let now = Self.nanoseconds(elapsed())
        state.withLock { state in
            if !Self.holds(state, at: now, validFor: Self.nanoseconds(validFor)) { state.term += 1 }
            state.lastRenewal = now
        }
    }

    public var isHeld: Bool { currentTerm != nil }

    /// The term under way, or nil while the lease is not held.
    public var currentTerm: UInt64? {
        let now = Self.nanoseconds(elapsed())
        return state.withLock { state in
            Self.holds(state, at: now, validFor: Self.nanoseconds(validFor)) ? state.term : nil
        }
    }

    /// Whether the lease is held now and has been since `term` began.
    public func isHeld(throughout term: UInt64?) -> Bool {
        guard let term else { return false }
        return currentTerm == term
    }

    private static func holds(_ state: State, at now: Int64, validFor: Int64) -> Bool {
        guard let last = state.lastRenewal else { return false }
        return now - last < validFor
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
