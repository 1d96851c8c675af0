/// A hybrid logical clock (protocol.md §2): monotonic timestamps that follow the wall
/// clock and absorb the clocks of remote peers.
///
/// A value type: the owner (a session or partition actor) keeps it and mutates it in place.
public struct HybridLogicalClock: Sendable {
    /// Remote timestamps further ahead than this are reported as drift (default 60 s).
    public static let defaultMaxDriftMillis: Int64 = 60_000

    public let nodeId: String
    public let maxDriftMillis: Int64
    public private(set) var lastMillis: Int64 = 0
    public private(set) var lastCounter: Int64 = 0
    private let clock: any PhysicalClock

    /// The outcome of absorbing a remote timestamp.
    public enum UpdateResult: Sendable, Equatable {
        case applied
        /// Applied, but the remote clock was ahead of ours by more than `maxDriftMillis`.
        case appliedWithDrift(millis: Int64)
    }

    /// - Precondition: `nodeId` contains no `:` (the string form would be ambiguous).
    public init(nodeId: String, clock: any PhysicalClock = SystemClock(), maxDriftMillis: Int64 = defaultMaxDriftMillis) {
        precondition(!nodeId.contains(":"), "an HLC node id must not contain ':'")
        self.nodeId = nodeId
        self.clock = clock
        self.maxDriftMillis = maxDriftMillis
    }

    /// A fresh timestamp for a local event.
    public mutating func now() -> Timestamp {
        let physical = clock.nowMillis()
        if physical > lastMillis {
            lastMillis = physical
            lastCounter = 0
        } else if lastCounter == Int64(UInt32.max) {
            // The counter is a u32 on the wire (Rust); roll into the next millisecond instead.
            lastMillis += 1
            lastCounter = 0
        } else {
            lastCounter += 1
        }
        return Timestamp(millis: lastMillis, counter: lastCounter, nodeId: nodeId)
    }

    /// Absorbs a remote timestamp so that later local timestamps order after it.
    ///
    /// Drift is reported, not refused: a peer with a fast clock must still converge (AP).
    @discardableResult
    public mutating func update(_ remote: Timestamp) -> UpdateResult {
        let physical = clock.nowMillis()
        let drift = remote.millis - physical
        let maxMillis = max(lastMillis, physical, remote.millis)
        if maxMillis == lastMillis && maxMillis == remote.millis {
            lastCounter = max(lastCounter, remote.counter) + 1
        } else if maxMillis == lastMillis {
            lastCounter += 1
        } else if maxMillis == remote.millis {
            lastCounter = remote.counter + 1
        } else {
            lastCounter = 0
        }
        lastMillis = maxMillis
        return drift > maxDriftMillis ? .appliedWithDrift(millis: drift) : .applied
    }
}
