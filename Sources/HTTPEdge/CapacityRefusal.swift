import NIOCore
import NIOHTTP1

/// The only handler behind the decoder of a connection `ConnectionCapacity` refused: it
/// answers the first request (a WebSocket upgrade or plain HTTP) with `503` and a problem
/// body saying why, and closes. Nothing reaches the application. A client that sends no
/// request within `wait` is closed without an answer: a refused connection holds a file
/// descriptor, and the reserve beside the limit is small.
public final class CapacityRefusal: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let problem: ProblemResponse
    private let wait: TimeAmount
    private let lingerTime: TimeAmount
    private var hasAnswered = false
    private var waiting: Scheduled<Void>?
    private let closing = LingeringClose()

    public init(problem: ProblemResponse, wait: TimeAmount = .seconds(2), lingerTime: TimeAmount = .seconds(1)) {
        self.problem = problem
        self.wait = wait
        self.lingerTime = lingerTime
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        waiting = context.eventLoop.assumeIsolated().scheduleTask(in: wait) {
            context.close(promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !hasAnswered, case .head = unwrapInboundIn(data) else { return }
        hasAnswered = true
        waiting?.cancel()
        let body = context.channel.allocator.buffer(string: problem.body)
        var headers = HTTPHeaders(problem.headers)
        headers.replaceOrAdd(name: "Content-Type", value: "application/problem+json")
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        headers.replaceOrAdd(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .serviceUnavailable, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.closing.start(context: context, linger: self.lingerTime)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request the parser refuses gets no answer either: the connection was never admitted.
        if !hasAnswered { context.close(promise: nil) }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        closing.inputClosed(context: context, event: event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        waiting?.cancel()
        // Closed without a request: the upgrade handler behind, still waiting for one, ends
        // quietly on "input closed" (see `LingeringClose.channelInactive`).
        if !closing.isClosing { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        closing.channelInactive(context: context)
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        waiting?.cancel()
        closing.cancel()
    }
}
