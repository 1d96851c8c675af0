import NIOCore
import TopGunWire

/// Whoever a domain pushes to: a live query's updates and server events, a topic's messages,
/// a lock's grant, a counter's updates, a journal's events. Domains hold subscribers, never
/// sockets: today every subscriber is a session on this node (`SessionOutbound`); once the
/// cluster exists, a session on another node is one too, represented here under an id of its
/// own and reached through its node.
///
/// Sending never waits and never fails: a subscriber that cannot keep up or has gone drops
/// what it is sent, and its session ends (the domains hear of it through `removeSession`).
public protocol Subscriber: AnyObject, Sendable {
    /// Unique on this node, among local and remote sessions alike.
    var id: SessionID { get }
    /// Encodes and sends one message.
    func send(_ message: TopGunMessage)
    /// Sends a message already encoded (one encoding for many subscribers).
    func send(encoded bytes: [UInt8])
    /// Queues a frame already encoded as part of a fan-out: it leaves when `batch` is flushed.
    func send(frame buffer: ByteBuffer, in batch: inout FanOutBatch)
    /// Encodes `message` and queues it as part of a fan-out.
    func send(_ message: TopGunMessage, in batch: inout FanOutBatch)
}

extension SessionOutbound: Subscriber {}
