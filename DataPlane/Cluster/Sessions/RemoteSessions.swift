import NIOCore
import Synchronization
import TopGunCore
import TopGunWire

/// A client session connected to another node, as the domains of this node see it: a
/// `Subscriber` with an id of this node, whose messages go back to its node on that node's
/// `PeerStream` (in order with everything else this node pushes there).
final class RemoteSubscriber: Subscriber {
    let id: SessionID
    /// The session's node's run.
    let run: RemoteSessions.Run
    /// The session's id on its own node.
    let remoteSession: UInt64
    private let stream: PeerStream

    init(run: RemoteSessions.Run, remoteSession: UInt64, stream: PeerStream) {
        self.id = SessionID.next()
        self.run = run
        self.remoteSession = remoteSession
        self.stream = stream
    }

    var address: SessionAddress { SessionAddress(node: run.node, incarnation: run.incarnation, session: remoteSession) }

    func send(_ message: TopGunMessage) {
        send(encoded: WireCodec().encode(message))
    }

    func send(encoded bytes: [UInt8]) {
        stream.append(.frame(sessions: [remoteSession], bytes: bytes))
    }

    func send(frame buffer: ByteBuffer, in batch: inout FanOutBatch) {
        batch.add(buffer, for: remoteSession, on: stream)
    }

    func send(_ message: TopGunMessage, in batch: inout FanOutBatch) {
        batch.add(ByteBuffer(bytes: WireCodec().encode(message)), for: remoteSession, on: stream)
    }
}

/// The sessions of other nodes that hold something on this node (a lock, a counter watch),
/// by their node's run and their id there.
///
/// A session's state here is released when its node says it ended (`ended`), when its node's
/// run is gone (`sweep`: the lease expired or was deleted, or the node runs again under a new
/// incarnation), or when the node cannot vouch for it after a lost push (`keepOnly`). A
/// dropped connection alone releases nothing: a lock survives a blip.
///
/// Ends may overtake the requests that made the state (they travel on different paths), so
/// the sessions that ended are remembered for a while and a late request for one is refused.
final class RemoteSessions: Sendable {
    /// One run of a node: its sessions' ids are unique within it.
    struct Run: Hashable, Sendable {
        var node: NodeID
        var incarnation: String
    }

    private struct RunState {
        var sessions: [UInt64: RemoteSubscriber] = [:]
        /// Ended sessions (ids only grow within a run, but ends may come out of order).
        var ended: Set<UInt64> = []
        var endedOrder: [UInt64] = []
        /// Whether a live lease of this run was seen: until then its absence from the leases
        /// read may only mean they were read before it joined.
        var seenLive = false
        var firstSeen: ContinuousClock.Instant
    }

    /// Ended session ids remembered per run.
    static let endedMemory = 65_536
    /// How long a run never seen live in the leases is trusted.
    static let unseenGrace: Duration = .seconds(30)

    private let runs = Mutex<[Run: RunState]>([:])
    /// The stream to a node (`PeerStreams.to`).
    private let stream: @Sendable (NodeID) -> PeerStream

    init(stream: @escaping @Sendable (NodeID) -> PeerStream) {
        self.stream = stream
    }

    /// The subscriber standing for `session` of `run`: the same one on every call; nil when
    /// that session ended already.
    func subscriber(_ run: Run, session: UInt64) -> RemoteSubscriber? {
        runs.withLock { runs in
            var state = runs[run] ?? RunState(firstSeen: .now)
            defer { runs[run] = state }
            if state.ended.contains(session) { return nil }
            if let existing = state.sessions[session] { return existing }
            let made = RemoteSubscriber(run: run, remoteSession: session, stream: stream(run.node))
            state.sessions[session] = made
            return made
        }
    }

    /// Sessions of `run` that ended: their local ids, to release everywhere.
    func ended(_ run: Run, sessions: [UInt64]) -> [SessionID] {
        runs.withLock { runs in
            var state = runs[run] ?? RunState(firstSeen: .now)
            defer { runs[run] = state }
            var released: [SessionID] = []
            for session in sessions {
                if let subscriber = state.sessions.removeValue(forKey: session) { released.append(subscriber.id) }
                if state.ended.insert(session).inserted { state.endedOrder.append(session) }
            }
            if state.endedOrder.count > Self.endedMemory {
                let forgotten = state.endedOrder.count - Self.endedMemory
                for session in state.endedOrder.prefix(forgotten) { state.ended.remove(session) }
                state.endedOrder.removeFirst(forgotten)
            }
            return released
        }
    }

    /// Keeps only the sessions of `node`'s run `incarnation` that `alive` names (the node's
    /// answer after a gap in its stream); returns the local ids of the others.
    func keepOnly(_ run: Run, alive: Set<UInt64>) -> [SessionID] {
        let gone = runs.withLock { runs in runs[run]?.sessions.keys.filter { !alive.contains($0) } ?? [] }
        return ended(run, sessions: gone)
    }

    /// The sessions' ids of `node`'s current runs (to ask the node which are still alive).
    func sessions(of node: NodeID) -> [Run: [UInt64]] {
        runs.withLock { runs in
            var found: [Run: [UInt64]] = [:]
            for (run, state) in runs where run.node == node && !state.sessions.isEmpty { found[run] = Array(state.sessions.keys) }
            return found
        }
    }

    /// Forgets the runs the leases say are gone; returns their sessions' local ids.
    func sweep(_ view: MembershipView, now: ContinuousClock.Instant = .now) -> [SessionID] {
        runs.withLock { runs in
            var released: [SessionID] = []
            for (run, state) in runs {
                let rows = view.leases.filter { $0.lease.node == run.node }
                let liveHere = rows.contains { $0.isLive && $0.lease.incarnation == run.incarnation }
                if liveHere {
                    runs[run]?.seenLive = true
                    continue
                }
                let replaced = rows.contains { $0.isLive && $0.lease.incarnation != run.incarnation }
                let expired = !rows.isEmpty && !rows.contains(where: \.isLive)
                guard replaced || expired || state.seenLive || now - state.firstSeen > Self.unseenGrace else { continue }
                released += state.sessions.values.map(\.id)
                runs[run] = nil
            }
            return released
        }
    }

    /// How many sessions of other nodes hold something here.
    var count: Int { runs.withLock { $0.values.reduce(0) { $0 + $1.sessions.count } } }
}
