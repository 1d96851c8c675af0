import NIOCore
import NIOEmbedded
import NIOWebSocket
import Synchronization
import Testing
import TopGunCore
import TopGunWire
@testable import DataPlane

@Suite struct SessionOutboundTests {
    /// Records the closes a sink asks for.
    final class Closes: Sendable {
        let (stream, continuation) = AsyncStream.makeStream(of: (CloseCode, String).self)
        func first() async -> (CloseCode, String)? {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
    }

    static func outbound(_ channel: EmbeddedChannel, capacity: Int = 16, closes: Closes) -> SessionOutbound {
        SessionOutbound.channel(channel, capacity: capacity) { code, reason in closes.continuation.yield((code, reason)) }
    }

    /// The messages written into the channel so far, in order.
    static func written(_ channel: EmbeddedChannel) throws -> [TopGunMessage] {
        var messages: [TopGunMessage] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            #expect(frame.opcode == .binary && frame.fin)
            messages.append(try WireCodec().decode(Array(frame.data.readableBytesView)))
        }
        return messages
    }

    static func ping(_ n: Int) -> TopGunMessage { .pong(Pong(timestamp: Double(n), serverTime: 0)) }

    @Test func framesAreWrittenInOrderOnTheEventLoop() throws {
        let channel = EmbeddedChannel()
        let out = Self.outbound(channel, closes: Closes())
        out.send(Self.ping(1))
        out.send(encoded: WireCodec().encode(Self.ping(2)))
        out.send(frame: ByteBuffer(bytes: WireCodec().encode(Self.ping(3))))
        #expect(try Self.written(channel).isEmpty)  // nothing before the event loop runs
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [Self.ping(1), Self.ping(2), Self.ping(3)])
        out.send(Self.ping(4))
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [Self.ping(4)])
    }

    @Test func closeComesAfterWhatIsQueuedAndNothingFollowsIt() async throws {
        let channel = EmbeddedChannel()
        let closes = Closes()
        let out = Self.outbound(channel, closes: closes)
        out.send(Self.ping(1))
        out.close(.unauthorized, reason: "bye")
        out.send(Self.ping(2))
        out.close(.goingAway, reason: "again")
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [Self.ping(1)])
        let close = await closes.first()
        #expect(close?.0 == .unauthorized && close?.1 == "bye")
    }

    @Test func aFullQueueClosesWith1013AfterWritingWhatItHeld() async throws {
        let channel = EmbeddedChannel()
        let closes = Closes()
        let out = Self.outbound(channel, capacity: 2, closes: closes)
        for n in 1...3 { out.send(Self.ping(n)) }
        #expect(out.didOverflow)
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [Self.ping(1), Self.ping(2)])
        #expect(await closes.first()?.0 == .tryAgainLater)
    }

    @Test func finishedOutboundStillWritesWhatWasQueued() throws {
        let channel = EmbeddedChannel()
        let out = Self.outbound(channel, closes: Closes())
        out.send(Self.ping(1))
        out.finish()
        out.send(Self.ping(2))
        channel.embeddedEventLoop.run()
        #expect(try Self.written(channel) == [Self.ping(1)])
    }
}
