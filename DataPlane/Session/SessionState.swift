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

    public init(ticket: FlushTicket?, ack: TopGunMessage, timeout: Duration) {
        self.ticket = ticket
        self.ack = ack
        self.timeout = timeout
    }
}

/// What one connection's handlers keep between messages. Owned by the connection's inbound
/// task alone, so it needs no synchronization.
public struct SessionState: Sendable {
    public let outbound: SessionOutbound
    public let acks: AsyncStream<PendingAck>.Continuation
    /// Maps where this session holds live queries (to clean up on close).
    public var touchedMaps: [MapDirectory.MapID: MapStore] = [:]
    /// Live query id → its map.
    public var queryMaps: [String: MapDirectory.MapID] = [:]
    public var rateLimiter: TokenBucket
    /// Whether the ack pipeline task runs. It starts with the first ack that must wait for
    /// durability, so a connection that never writes (most of them) costs one task less.
    public var ackPipelineRunning = false
    public private(set) var wantsAckPipeline = false

    public init(outbound: SessionOutbound, acks: AsyncStream<PendingAck>.Continuation, rateLimiter: TokenBucket) {
        self.outbound = outbound
        self.acks = acks
        self.rateLimiter = rateLimiter
    }

    /// Sends an ack now when nothing is waiting ahead of it; otherwise queues it behind the
    /// acks that wait, keeping acknowledgements in order.
    public mutating func acknowledge(_ pending: PendingAck) {
        if !ackPipelineRunning && !wantsAckPipeline && pending.ticket == nil {
            outbound.send(pending.ack)
            return
        }
        wantsAckPipeline = true
        acks.yield(pending)
    }
}
