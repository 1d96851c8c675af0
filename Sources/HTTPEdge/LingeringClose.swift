import NIOCore

/// Ends a connection after its last response without losing that response: closing a socket
/// whose input still holds unread bytes makes the kernel send a reset, which may reach the
/// client before it has read the response. So the output is closed first (the client reads
/// the response, then end of stream), what the client still sends is read and dropped, and the
/// connection closes when the client closes its side or `linger` has passed.
///
/// A class: closing runs the channel's handlers at once (`channelInactive` cancels the
/// deadline), re-entering it while `start` is still running.
final class LingeringClose {
    private var deadline: Scheduled<Void>?
    private(set) var isClosing = false

    /// Call on the channel's event loop once the last response is written.
    func start(context: ChannelHandlerContext, linger: TimeAmount) {
        guard !isClosing else { return }
        isClosing = true
        guard context.channel.isActive else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: linger) {
            context.close(promise: nil)
        }
        let halfClosed = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: halfClosed)
        halfClosed.futureResult.assumeIsolated().whenFailure { _ in
            // A channel that cannot half-close is closed at once.
            context.close(promise: nil)
        }
    }

    /// Call from `userInboundEventTriggered`: the client has stopped sending.
    func inputClosed(context: ChannelHandlerContext, event: Any) {
        if isClosing, case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
        }
    }

    /// Call from `channelInactive`, before passing it on. Once the output is closed, the
    /// client's end of stream closes the whole channel without an `inputClosed` event; the
    /// handlers behind get one here, as they would have without the half-close. (NIO's upgrade
    /// handler, still waiting for a first request that was refused, then ends its negotiation
    /// as "input closed", which hummingbird-websocket takes quietly, rather than failing it as
    /// "removed", which it logs as an error.)
    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        if isClosing {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
    }

    /// Call when the handler leaves the pipeline.
    func cancel() {
        deadline?.cancel()
        deadline = nil
    }
}
