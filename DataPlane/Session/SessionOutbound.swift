import Synchronization
import TopGunCore
import TopGunWire

/// Identifies one client connection within a node.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public var description: String { "s\(rawValue)" }

    private static let counter = Atomic<UInt64>(0)

    /// A fresh id, unique within the process.
    public static func next() -> SessionID {
        SessionID(rawValue: counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    public init(rawValue: UInt64) { self.rawValue = rawValue }
}

/// The sending side of one connection, shared with everything that pushes to it (live
/// queries, topics, locks). Messages are queued and written by the connection's writer task.
///
/// The queue is bounded: a client that does not read is disconnected (close 1013) rather than
/// allowed to grow the server's memory without limit; it reconnects and catches up through
/// Merkle sync.
public final class SessionOutbound: Sendable {
    public enum Item: Sendable {
        case frame([UInt8])
        case close(CloseCode, String)
    }

    public let id: SessionID
    private let continuation: AsyncStream<Item>.Continuation
    private let overflowed = Atomic<Bool>(false)
    private let codec = WireCodec()

    /// Creates the outbound side and the stream its writer consumes.
    public static func make(id: SessionID = .next(), capacity: Int = 4096) -> (SessionOutbound, AsyncStream<Item>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(capacity))
        return (SessionOutbound(id: id, continuation: continuation), stream)
    }

    private init(id: SessionID, continuation: AsyncStream<Item>.Continuation) {
        self.id = id
        self.continuation = continuation
    }

    /// Whether the queue overflowed (the writer then closes with 1013).
    public var didOverflow: Bool { overflowed.load(ordering: .relaxed) }

    public func send(_ message: TopGunMessage) {
        send(encoded: codec.encode(message))
    }

    /// Sends bytes already encoded (one encoding shared by many recipients).
    public func send(encoded bytes: [UInt8]) {
        if case .dropped = continuation.yield(.frame(bytes)) {
            overflowed.store(true, ordering: .relaxed)
            continuation.finish()
        }
    }

    /// Sends a close frame after everything queued so far, then ends the connection.
    public func close(_ code: CloseCode, reason: String) {
        continuation.yield(.close(code, reason))
        continuation.finish()
    }

    /// Ends the stream without a close frame (the socket is already gone).
    public func finish() {
        continuation.finish()
    }
}
