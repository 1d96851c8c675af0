import NIOCore
import NIOHTTP1

/// The only handler behind the decoder of a connection `ConnectionCapacity` refused: it
/// answers the first request (a WebSocket upgrade or plain HTTP) with `503` and a problem
/// body saying why, and closes. Nothing reaches the application. A client that sends no
/// request within `wait` is closed without an answer: a refused connection holds a file
/// descriptor, and the reserve beside the limit is small.
public final class CapacityRefusal: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart

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
        let written = context.eventLoop.makePromise(of: Void.self)
        problem.write(status: .serviceUnavailable, context: context, written: written)
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
