import NIOCore
import NIOHTTP1

/// The headers and body a plane answers a malformed request with (its problem+json form).
public struct ProblemResponse: Sendable {
    public var headers: [(String, String)]
    public var body: String

    public init(headers: [(String, String)] = [], body: String) {
        self.headers = headers
        self.body = body
    }

    /// Writes the problem as a whole `status` response that closes the connection; `written`
    /// completes once it is flushed (the caller then closes, lingering).
    func write(status: HTTPResponseStatus, context: ChannelHandlerContext, written: EventLoopPromise<Void>) {
        let body = context.channel.allocator.buffer(string: self.body)
        var headers = HTTPHeaders(self.headers)
        headers.replaceOrAdd(name: "Content-Type", value: "application/problem+json")
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        headers.replaceOrAdd(name: "Connection", value: "close")
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: written)
    }
}

/// Answers a request the HTTP/1 parser refused with an `application/problem+json` response
/// (`431`, `501` or `400`, see `MalformedRequest`) and closes the connection, where the server
/// framework would write a bare `400`. It sits right after the decoder, so the parser's error
/// reaches it before any other handler.
///
/// An error while a request's body arrives is passed on: the application is reading that body
/// and answers it. An error in the head of a pipelined request waits until the responses owed
/// before it are written. After the answer the output is closed and what the client still
/// sends is read and dropped for up to `lingerTime`, so a client still sending its oversized
/// head reads the answer instead of a reset. At a protocol switch (`101`) the handler leaves
/// the pipeline: what follows is not HTTP.
public final class MalformedRequestResponder: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias InboundOut = HTTPServerRequestPart
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    /// How a plane renders the problem for a refused request.
    public typealias Render = @Sendable (MalformedRequest) -> ProblemResponse

    private let limits: HTTPRequestLimits
    private let render: Render
    private let lingerTime: TimeAmount
    /// Requests passed on whose response has not ended yet.
    private var responsesOwed = 0
    private var isReadingBody = false
    /// A refusal waiting for the responses owed before it.
    private var pending: MalformedRequest?
    private var hasAnswered = false
    private let closing = LingeringClose()

    public init(limits: HTTPRequestLimits, lingerTime: TimeAmount = .seconds(2), render: @escaping Render) {
        self.limits = limits
        self.lingerTime = lingerTime
        self.render = render
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Nothing after a refusal reaches the application.
        guard !hasAnswered, pending == nil else { return }
        switch unwrapInboundIn(data) {
        case .head:
            responsesOwed += 1
            isReadingBody = true
        case .body:
            break
        case .end:
            isReadingBody = false
        }
        context.fireChannelRead(data)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if hasAnswered || pending != nil {
            // The decoder repeats itself for every byte that follows its error.
            if error is HTTPParserError || error is ByteToMessageDecoderError { return }
            context.fireErrorCaught(error)
            return
        }
        guard !isReadingBody, let refusal = MalformedRequest(error, limits: limits) else {
            context.fireErrorCaught(error)
            return
        }
        if responsesOwed == 0 {
            answer(refusal, context: context)
        } else {
            pending = refusal
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            context.write(data, promise: leavingOnceWritten(context: context, promise: promise))
        case .end:
            context.write(data, promise: promise)
            responsesOwed = max(0, responsesOwed - 1)
            if responsesOwed == 0, let refusal = pending {
                pending = nil
                answer(refusal, context: context)
            }
        case .head, .body:
            context.write(data, promise: promise)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        closing.inputClosed(context: context, event: event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing.channelInactive(context: context)
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        closing.cancel()
    }

    private func answer(_ refusal: MalformedRequest, context: ChannelHandlerContext) {
        hasAnswered = true
        let written = context.eventLoop.makePromise(of: Void.self)
        render(refusal).write(status: refusal.status, context: context, written: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.closing.start(context: context, linger: self.lingerTime)
        }
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
