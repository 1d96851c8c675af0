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

    public init(outbound: SessionOutbound, acks: AsyncStream<PendingAck>.Continuation, rateLimiter: TokenBucket) {
        self.outbound = outbound
        self.acks = acks
        self.rateLimiter = rateLimiter
    }
}
