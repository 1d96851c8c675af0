import Synchronization
import TopGunCore

/// For each session of this node, the other nodes holding something for it (a lock, a
/// counter watch): where its end must be told, and which sessions a lost push from a node
/// concerns.
final class SessionFootprint: Sendable {
    private let nodes = Mutex<[SessionID: Set<NodeID>]>([:])

    init() {}

    /// Records that `node` holds something for `session`. Call it before the request that
    /// makes the state, so that an end racing the request is told to `node` too.
    func add(_ session: SessionID, on node: NodeID) {
        _ = nodes.withLock { $0[session, default: []].insert(node) }
    }

    /// Forgets `session`; returns the nodes to tell that it ended.
    func remove(_ session: SessionID) -> Set<NodeID> {
        nodes.withLock { $0.removeValue(forKey: session) ?? [] }
    }

    /// The sessions that rely on `node`.
    func sessions(on node: NodeID) -> [SessionID] {
        nodes.withLock { nodes in nodes.compactMap { $0.value.contains(node) ? $0.key : nil } }
    }
}
