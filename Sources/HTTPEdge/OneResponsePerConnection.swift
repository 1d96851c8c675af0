import NIOCore
import NIOHTTP1

/// Makes every HTTP response the connection's last: it carries `Connection: close`, and the
/// connection ends once it is written (`LingeringClose`). A protocol switch (`101`) passes
/// untouched and the handler leaves the pipeline.
///
/// The data plane's port needs this because a WebSocket upgrade works only as a connection's
/// first request there (see `DataPlaneServer`): a client that reused a connection which served
/// `GET /health` or `POST /sync` for its WebSocket would get `307` and a failed connect. With
/// `Connection: close` on every plain response, no client keeps such a connection to reuse.
public final class OneResponsePerConnection: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    private let lingerTime: TimeAmount
    private let closing = LingeringClose()

    public init(lingerTime: TimeAmount = .seconds(2)) {
        self.lingerTime = lingerTime
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            context.write(data, promise: leavingOnceWritten(context: context, promise: promise))
        case .head(var head) where head.status.code >= 200:
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            let written = context.eventLoop.makePromise(of: Void.self)
            if let promise { written.futureResult.cascade(to: promise) }
            written.futureResult.assumeIsolated().whenComplete { _ in
                self.closing.start(context: context, linger: self.lingerTime)
            }
            context.write(data, promise: written)
        case .head, .body:
            context.write(data, promise: promise)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        closing.cancel()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        // The client has read the last response and closed its side.
        closing.inputClosed(context: context, event: event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing.channelInactive(context: context)
        context.fireChannelInactive()
    }

    /// A promise for the `101` that, once it is written, takes the handler out of the pipeline
    /// (before `promise`'s callbacks, which switch the pipeline to the new protocol and may pass
    /// on bytes already read). Not at once: the flush of the same write still goes through here.
    private func leavingOnceWritten(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) -> EventLoopPromise<Void> {
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        if let promise { written.futureResult.cascade(to: promise) }
        return written
    }
}
