import Tenancy
import TopGunCore
import TopGunWire

/// An acknowledgement waiting for its write concern; acks leave strictly in order, so a
/// later batch's `lastId` never acknowledges an earlier batch that is not durable yet.
public struct PendingAck: Sendable {
    /// Wait for this durability ticket first (PERSISTED); nil sends at once.
    public var ticket: FlushTicket?
    public var ack: TopGunMessage
    public var timeout: Duration
    /// The id of the batch's first op: when the wait fails, the client must send the batch
    /// again before any later ack of the connection goes out (an `OP_ACK` covers every
    /// earlier op of the connection, in the client's reading).
    public var firstOpID: String?

    public init(ticket: FlushTicket?, ack: TopGunMessage, timeout: Duration, firstOpID: String? = nil) {
        self.ticket = ticket
        self.ack = ack
        self.timeout = timeout
        self.firstOpID = firstOpID
    }
}

/// What one connection's handlers keep between messages. Owned by the connection's inbound
/// task alone, so it needs no synchronization.
public struct SessionState: Sendable {
    public let outbound: SessionOutbound
    /// The queue of acks waiting behind a write concern: made with the first ack that must
    /// wait, so a connection that never writes (most of them) allocates nothing for it.
    public private(set) var acks: AsyncStream<PendingAck>.Continuation?
    /// The ack pipeline's stream, until the connection starts a task on it.
    private var ackPipelineToStart: AsyncStream<PendingAck>?
    /// Maps where this session holds live queries (to clean up on close).
    public var touchedMaps: [MapDirectory.MapID: MapStore] = [:]
    /// Live query id → its map.
    public var queryMaps: [String: MapDirectory.MapID] = [:]
    /// Live queries coordinated across a cluster's nodes (`ClusterLiveQueries`).
    var clusterQueries = Set<String>()
    public var rateLimiter: TokenBucket
    /// Sends the remaining pages of large live-query results (made with the first one).
    var resultPager: ResultPager?
    /// Set when the pager has work and no task: the connection starts one.
    private var pagerToStart: ResultPager?

    public init(outbound: SessionOutbound, rateLimiter: TokenBucket) {
        self.outbound = outbound
        self.rateLimiter = rateLimiter
    }

    /// Sends an ack now when nothing is waiting ahead of it; otherwise queues it behind the
    /// acks that wait, keeping acknowledgements in order.
    public mutating func acknowledge(_ pending: PendingAck) {
        if acks == nil {
            if pending.ticket == nil {
                outbound.send(pending.ack)
                return
            }
            let (stream, continuation) = AsyncStream.makeStream(of: PendingAck.self)
            acks = continuation
            ackPipelineToStart = stream
        }
        acks?.yield(pending)
    }

    /// The stream an ack pipeline must now be started on, once.
    public mutating func takeAckPipeline() -> AsyncStream<PendingAck>? {
        guard let stream = ackPipelineToStart else { return nil }
        ackPipelineToStart = nil
        return stream
    }

    /// Queues the rest of a live query's first result, to be sent page by page.
    mutating func sendRemainingPages(of queryId: String, from store: MapStore, pageBytes: Int) {
        let pager = resultPager ?? ResultPager(outbound: outbound, pageBytes: pageBytes)
        resultPager = pager
        if pager.add(ResultPager.Pending(store: store, queryId: queryId)) { pagerToStart = pager }
    }

    /// The pager a task must now be started for, once.
    mutating func takePagerToStart() -> ResultPager? {
        defer { pagerToStart = nil }
        return pagerToStart
    }

    /// Ends the ack pipeline (it sends what is queued, then stops).
    public func finishAcks() {
        acks?.finish()
    }
}
