import Logging
import Metrics
import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// The receiving side of every peer's stream: checks each message's place in its stream
/// (`StreamSequence`) and hands its entries to the parts of this node they are for.
///
/// A gap in a peer's stream means pushes from it were lost, and which ones cannot be known:
/// this node's sessions that rely on the peer (`SessionFootprint`) are closed with 1013, as a
/// slow consumer's are, so that their clients reconnect and catch up; and the peer is asked
/// which of its sessions holding state here are still alive, since the ends it sent may be
/// among the lost.
final class ClusterStreamInbox: Sendable {
    /// What the entries are delivered to: this node's parts, set once they exist.
    struct Targets: Sendable {
        var sessions: SessionRegistry
        var topics: TopicRegistry
        /// Where this node's live queries' feeds go.
        var liveQueries: ClusterLiveQueries
        /// Where this node's journal subscriptions' feeds go, and shipped events.
        var clusterJournal: ClusterJournal
        var journal: EventJournal
        /// Releases what other nodes' sessions hold here.
        var release: @Sendable ([SessionID]) async -> Void
    }

    private let sequences = Mutex<[NodeID: StreamSequence]>([:])
    private let targets = SynchronizedBox<Targets?>(nil)
    private let remoteSessions: RemoteSessions
    private let footprint: SessionFootprint
    /// Asks a peer which of its sessions are alive (`sessions.alive`).
    private let reconcile: @Sendable (NodeID) async -> Void
    private let logger: Logger
    let gaps = Atomic<Int>(0)
    private let gapCounter: Counter?

    init(
        remoteSessions: RemoteSessions, footprint: SessionFootprint, gapCounter: Counter? = nil, logger: Logger,
        reconcile: @escaping @Sendable (NodeID) async -> Void
    ) {
        self.gapCounter = gapCounter
        self.remoteSessions = remoteSessions
        self.footprint = footprint
        self.reconcile = reconcile
        self.logger = logger
    }

    func attach(_ targets: Targets) { self.targets.set(targets) }

    func receive(from peer: NodeID, body: [UInt8]) async throws {
        let message = try StreamMessage(decoding: body)
        // Before this node's parts exist nothing is taken, so nothing is counted as seen: the
        // first message after that is a gap if any was missed.
        guard let targets = targets.get() else { return }
        let verdict = sequences.withLock { $0[peer, default: StreamSequence()].accept(message.position) }
        switch verdict {
        case .repeated:
            return
        case .gap:
            gaps.add(1, ordering: .relaxed)
            gapCounter?.increment()
            let affected = Set(footprint.sessions(on: peer))
            if !affected.isEmpty {
                logger.warning("pushes from a peer were lost; closing the sessions that rely on it", metadata: [
                    "peer": "\(peer)", "sessions": "\(affected.count)",
                ])
                targets.sessions.close(.tryAgainLater, reason: "cluster connection interrupted") { affected.contains($0.outbound.id) }
            }
            let reconcile = reconcile
            Task { await reconcile(peer) }
        case .next:
            break
        }
        // Consecutive live-query feed messages go to the coordinator in one call (each
        // client session is then written once for all of them); anything else goes after them.
        var feedMessages: [ClusterLiveQueries.Delivery] = []
        func deliverFeedMessages() async {
            guard !feedMessages.isEmpty else { return }
            await targets.liveQueries.receive(feedMessages)
            feedMessages = []
        }
        for entry in message.entries {
            if case .frame(let sessions, let bytes) = entry {
                var locals: [SessionOutbound] = []
                var feeds: [UInt64] = []
                for session in sessions {
                    if let out = targets.sessions.outbound(SessionID(rawValue: session)) { locals.append(out) } else { feeds.append(session) }
                }
                if !locals.isEmpty {
                    await deliverFeedMessages()
                    let frame = SessionOutbound.frameBuffer(bytes)
                    var batch = FanOutBatch()
                    for out in locals { out.send(frame: frame, in: &batch) }
                    batch.flush()
                }
                // Not sessions: feeds of journal subscriptions or of live queries (or sessions
                // that closed meanwhile).
                guard !feeds.isEmpty, let decoded = try? WireCodec().decode(bytes) else { continue }
                if case .journalEventMessage = decoded {
                    await deliverFeedMessages()
                    for feed in feeds { await targets.clusterJournal.receive(feed: feed, message: decoded, frame: bytes) }
                } else {
                    feedMessages.append(.init(feeds: feeds, message: decoded, frame: bytes))
                }
                continue
            }
            await deliverFeedMessages()
            switch entry {
            case .frame:
                break
            case .feedReady(let feed):
                await targets.liveQueries.feedReady(feed)
            case .journalAppend(let tenant, let mapName, let events):
                targets.journal.appendShipped(events, mapName: mapName, tenant: tenant)
            case .topic(let tenant, let topic, let bytes):
                await targets.topics.deliver(encoded: bytes, topic: topic, tenant: tenant)
            case .sessionsEnded(let incarnation, let sessions):
                await targets.release(remoteSessions.ended(.init(node: peer, incarnation: incarnation), sessions: sessions))
            }
        }
        await deliverFeedMessages()
    }
}
