import NIOCore
import Synchronization

/// The I/O half of the handshake: feeds a `ClusterHandshake` the frames of one connection,
/// writes what it says, and holds it to the deadline. On the deadline the channel is closed,
/// which ends the pending read; nothing here can outlive `timeout`.
enum ClusterHandshakeExchange {
    enum Outcome: Sendable, Equatable {
        case authenticated(NodeID)
        /// Refused, by this side or the peer.
        case refused(HandshakeRefusal)
        /// The connection ended without a refusal (the peer closed it, or a write failed).
        case closed(String)
    }

    /// Set by the deadline timer, read by the reading task.
    private final class Deadline: Sendable {
        private let passed = Atomic<Bool>(false)

        var hasPassed: Bool { passed.load(ordering: .acquiring) }

        func pass() { passed.store(true, ordering: .releasing) }
    }

    static func run(
        _ handshake: inout ClusterHandshake,
        channel: any Channel,
        inbound iterator: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        timeout: Duration,
        maxFrameBytes: Int
    ) async -> Outcome {
        let deadline = Deadline()
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            deadline.pass()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }

        var action = handshake.start()
        while true {
            switch action {
            case .send(let envelope):
                do {
                    try await outbound.write(envelope.frame(maxFrameBytes: maxFrameBytes))
                } catch {
                    if deadline.hasPassed {
                        action = handshake.timedOut()
                        continue
                    }
                    return .closed("write failed during the handshake: \(error)")
                }
            case .authenticated(let peer):
                return .authenticated(peer)
            case .refuse(let refusal, let notify):
                if let notify, !deadline.hasPassed, let frame = try? notify.frame(maxFrameBytes: maxFrameBytes) {
                    // Best effort, so the other side can log why; the deadline bounds it.
                    try? await outbound.write(frame)
                }
                return .refused(refusal)
            case .none:
                break
            }

            let frame: ByteBuffer?
            do {
                frame = try await iterator.next()
            } catch {
                action = deadline.hasPassed ? handshake.timedOut() : handshake.malformed("\(error)")
                continue
            }
            guard let frame else {
                if deadline.hasPassed {
                    action = handshake.timedOut()
                    continue
                }
                return .closed("connection closed during the handshake")
            }
            do {
                action = handshake.received(try ClusterEnvelope.decode(frame, maxFrameBytes: maxFrameBytes))
            } catch {
                action = handshake.malformed(error.description)
            }
        }
    }
}
