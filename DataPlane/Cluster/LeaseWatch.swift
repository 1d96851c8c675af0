import Synchronization

/// Whether this node still holds its lease, judged locally from its last successful renewal
/// (design.md §6: REPLICATED is acknowledged only while the lease holds). The lease is
/// counted lost a heartbeat before it would expire at the database, so that a node never acts
/// on a lease the coordinator may already consider gone.
public final class LeaseWatch: Sendable {
    private let lastRenewal = Atomic<Int64>(0)
    /// How long after a renewal the lease counts as held here.
    private let validFor: Duration
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init(leaseDuration: Duration, heartbeatInterval: Duration) {
        validFor = leaseDuration - heartbeatInterval
        origin = clock.now
    }

    /// The lease was taken or renewed now (the database answered).
    public func renewed() {
        lastRenewal.store(Self.nanoseconds(clock.now - origin), ordering: .releasing)
    }

    public var isHeld: Bool {
        let last = lastRenewal.load(ordering: .acquiring)
        guard last > 0 else { return false }
        return Self.nanoseconds(clock.now - origin) - last < Self.nanoseconds(validFor)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
