import Synchronization
import TopGunCore

/// The node's hybrid logical clock, shared by every session and map.
///
/// A mutex rather than an actor: each use is a few arithmetic operations, and callers on the
/// hot path (every write absorbs the writer's timestamp) should not pay an actor hop.
public final class NodeClock: Sendable {
    private let clock: Mutex<HybridLogicalClock>
    public let nodeId: String

    public init(nodeId: String, physicalClock: any PhysicalClock = SystemClock()) {
        self.nodeId = nodeId
        self.clock = Mutex(HybridLogicalClock(nodeId: nodeId, clock: physicalClock))
    }

    public func now() -> Timestamp {
        clock.withLock { $0.now() }
    }

    /// Absorbs a remote timestamp (drift is tolerated: convergence beats refusal).
    public func observe(_ remote: Timestamp) {
        clock.withLock { _ = $0.update(remote) }
    }

    public func nowMillis() -> Int64 { SystemClock().nowMillis() }
}
