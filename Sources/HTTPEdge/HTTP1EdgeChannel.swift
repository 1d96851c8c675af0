import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// A server child channel (`HTTP1Channel`, `HTTP1WebSocketUpgradeChannel`, ...) with handlers
/// of ours placed right after its HTTP/1 decoder. Hummingbird's own hook
/// (`additionalChannelHandlers`) adds handlers after its HTTP-types codec, where the parser's
/// errors have already gone by, and, on a channel that may upgrade to WebSocket, only once the
/// first request is known not to be an upgrade.
public struct HTTP1EdgeChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    public let base: Base
    /// Makes the handlers for one connection, in pipeline order (each must leave the pipeline
    /// at a protocol switch: after one, what passes is not HTTP).
    public let edgeHandlers: @Sendable (any Channel) -> [any RemovableChannelHandler]

    public init(_ base: Base, edgeHandlers: @escaping @Sendable (any Channel) -> [any RemovableChannelHandler]) {
        self.base = base
        self.edgeHandlers = edgeHandlers
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let edgeHandlers = edgeHandlers
        // The base configures its pipeline synchronously on the channel's loop, so this runs
        // before the first byte is read.
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandlers(edgeHandlers(channel), position: .after(decoder))
            return value
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPRequestLimits {
    /// The same limits as Hummingbird's decoder configuration, so the decoder enforces what
    /// the refusals announce.
    public var decoderConfiguration: HTTP1Channel.Configuration.DecoderConfiguration {
        .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes, maxHeaderFieldCount: maxHeaderFields)
    }
}
