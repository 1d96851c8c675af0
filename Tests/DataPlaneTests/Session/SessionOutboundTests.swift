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

    static func outbound(
        _ channel: NIOAsyncTestingChannel, maxQueuedBytes: Int = 1 << 20, closeTimeout: Duration = .seconds(3), stallTimeout: Duration = .seconds(30),
        closes: Closes, onClosing: @escaping @Sendable () -> Void = {}
    ) -> SessionOutbound {
        SessionOutbound.channel(
            channel, limits: SessionOutbound.Limits(maxQueuedBytes: maxQueuedBytes, closeTimeout: closeTimeout, stallTimeout: stallTimeout),
            onClosing: onClosing
        ) { code, reason in closes.continuation.yield((code, reason)) }
    }

    /// The messages written into the channel so far, in order.
    static func written(_ channel: NIOAsyncTestingChannel) async throws -> [TopGunMessage] {
        var messages: [TopGunMessage] = []
        while let frame = try await channel.readOutbound(as: WebSocketFrame.self) {
            #expect(frame.opcode == .binary && frame.fin)
            messages.append(try WireCodec().decode(Array(frame.data.readableBytesView)))
        }
        return messages
    }

    static func ping(_ n: Int) -> TopGunMessage { .pong(Pong(timestamp: Double(n), serverTime: 0)) }

    @Test func framesAreWrittenInOrderOnTheEventLoop() async throws {
        let channel = NIOAsyncTestingChannel()
        let out = Self.outbound(channel, closes: Closes())
        out.send(Self.ping(1))
        out.send(encoded: WireCodec().encode(Self.ping(2)))
        out.send(frame: ByteBuffer(bytes: WireCodec().encode(Self.ping(3))))
        await channel.testingEventLoop.run()
        #expect(try await Self.written(channel) == [Self.ping(1), Self.ping(2), Self.ping(3)])
        out.send(Self.ping(4))
        await channel.testingEventLoop.run()
        #expect(try await Self.written(channel) == [Self.ping(4)])
    }

    @Test func closeComesAfterWhatIsQueuedAndNothingFollowsIt() async throws {
        let channel = NIOAsyncTestingChannel()
        let closes = Closes()
        let out = Self.outbound(channel, closes: closes)
        out.send(Self.ping(1))
        out.close(.unauthorized, reason: "bye")
        out.send(Self.ping(2))
        out.close(.goingAway, reason: "again")
        await channel.testingEventLoop.run()
        #expect(try await Self.written(channel) == [Self.ping(1)])
        let close = await closes.first()
        #expect(close?.0 == .unauthorized && close?.1 == "bye")
    }

    @Test func aClientThatLetsTheBoundFillUpIsClosedWith1013AndItsFramesDropped() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        channel.isWritable = false  // the client does not read
        let closes = Closes()
        let closing = Closes()
        // Three frames fit under the bound; the fourth finds it full.
        let frameBytes = WireCodec().encode(Self.ping(1)).count
        let out = Self.outbound(channel, maxQueuedBytes: 3 * frameBytes - 1, closes: closes) { closing.continuation.yield((.normal, "")) }
        for n in 1...3 { out.send(Self.ping(n)) }
        #expect(!out.didOverflow)
        out.send(Self.ping(4))
        #expect(out.didOverflow && out.isClosing)
        #expect(out.queuedBytes == 0)  // dropped at once, not when the socket drains
        #expect(await closing.first() != nil)  // the session is told at once
        // A drain that found the socket full looks again 10 ms later; the close goes out then.
        await channel.testingEventLoop.advanceTime(by: .milliseconds(20))
        #expect(try await Self.written(channel).isEmpty)
        let close = await closes.first()
        #expect(close?.0 == .tryAgainLater)
        #expect(close?.1.contains("slow consumer") == true)
    }

    @Test func framesWaitWhileTheChannelIsNotWritableAndCountAgainstTheBound() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        channel.isWritable = false
        let out = Self.outbound(channel, closes: Closes())
        out.send(Self.ping(1))
        out.send(Self.ping(2))
        await channel.testingEventLoop.run()
        #expect(try await Self.written(channel).isEmpty)
        #expect(out.queuedBytes > 0)
        channel.isWritable = true
        await channel.testingEventLoop.advanceTime(by: .milliseconds(20))
        #expect(try await Self.written(channel) == [Self.ping(1), Self.ping(2)])
        #expect(out.queuedBytes == 0)
    }

    @Test func theTCPConnectionIsClosedWhenThePeerDoesNotAnswerTheCloseInTime() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let closes = Closes()
        let out = Self.outbound(channel, closeTimeout: .seconds(2), closes: closes)
        out.close(.unauthorized, reason: "authentication deadline passed")
        await channel.testingEventLoop.run()
        #expect(await closes.first()?.0 == .unauthorized)
        #expect(channel.isActive)
        await channel.testingEventLoop.advanceTime(by: .milliseconds(1_900))
        #expect(channel.isActive)  // the peer still has time to answer
        await channel.testingEventLoop.advanceTime(by: .milliseconds(200))
        #expect(!channel.isActive)  // it did not: the socket is closed regardless
    }

    @Test func aResponseWaitingForRoomTooLongClosesWith1013() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        channel.isWritable = false
        let closes = Closes()
        // Room is a quarter of the bound: 16 bytes; one PONG is over it.
        let out = Self.outbound(channel, maxQueuedBytes: 64, stallTimeout: .seconds(5), closes: closes)
        out.send(Self.ping(1))
        await channel.testingEventLoop.run()
        let waiter = Task { await out.waitForRoom() }
        // The waiter registers and arms its timer on the event loop's clock.
        try await Self.untilWaiting(out)
        await channel.testingEventLoop.advanceTime(by: .seconds(5))
        #expect(await waiter.value == false)
        #expect(out.isClosing)
        await channel.testingEventLoop.run()
        let close = await closes.first()
        #expect(close?.0 == .tryAgainLater && close?.1.contains("stopped reading") == true)
    }

    /// Returns once a response waits for room on `out`; fails after 5 s.
    static func untilWaiting(_ out: SessionOutbound) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while out.roomWaiterCount == 0 {
            try #require(ContinuousClock.now < deadline, "nothing waits for room")
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func roomComesBackOnceTheClientReads() async throws {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        channel.isWritable = false
        let out = Self.outbound(channel, maxQueuedBytes: 64, closes: Closes())
        out.send(Self.ping(1))
        await channel.testingEventLoop.run()
        let waiter = Task { await out.waitForRoom() }
        try await Self.untilWaiting(out)
        channel.isWritable = true
        await channel.testingEventLoop.advanceTime(by: .milliseconds(20))
        #expect(await waiter.value == true)
        #expect(!out.isClosing)
    }

    @Test func closeReasonsAreCutToWhatAControlFrameHolds() async throws {
        let channel = NIOAsyncTestingChannel()
        let closes = Closes()
        let out = Self.outbound(channel, closes: closes)
        out.close(.unauthorized, reason: String(repeating: "é", count: 200))  // 400 bytes
        await channel.testingEventLoop.run()
        let reason = await closes.first()?.1 ?? ""
        #expect(reason.utf8.count <= 123 && reason.utf8.count >= 122)
        #expect(reason.allSatisfy { $0 == "é" })
    }

    @Test func afterTheSocketIsGoneNothingIsWrittenAndWaitersGiveUp() async throws {
        let channel = NIOAsyncTestingChannel()
        let out = Self.outbound(channel, closes: Closes())
        // (A frame sent just before `finish` may or may not be written: the testing loop can
        // run the drain it scheduled first, as a real loop can.)
        out.finish()
        out.send(Self.ping(2))
        await channel.testingEventLoop.run()
        #expect(try await Self.written(channel).isEmpty)
        #expect(await out.waitForRoom() == false)
    }
}
