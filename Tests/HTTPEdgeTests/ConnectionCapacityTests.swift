import HTTPEdge
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

struct ConnectionCapacityTests {
    @Test func admitsUpToItsLimitAndTakesOneMoreOnlyOnceOneCloses() throws {
        let refusals = Atomic<Int>(0)
        let capacity = ConnectionCapacity(limit: 2, onRefused: { refusals.wrappingAdd(1, ordering: .relaxed) })
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        #expect(capacity.admit(channels[0]))
        #expect(capacity.admit(channels[1]))
        #expect(!capacity.admit(channels[2]))
        #expect(capacity.openConnections == 2 && capacity.refused == 1 && refusals.load(ordering: .relaxed) == 1)
        // A refused channel holds no place: its close gives nothing back.
        _ = try? channels[2].finish()
        #expect(capacity.openConnections == 2)
        _ = try? channels[0].finish()
        #expect(capacity.openConnections == 1)
        let next = EmbeddedChannel()
        #expect(capacity.admit(next))
        #expect(!capacity.admit(EmbeddedChannel()))
        _ = try? channels[1].finish()
        _ = try? next.finish()
        #expect(capacity.openConnections == 0)
    }

    @Test(arguments: [(1_024, 960), (20_000, 18_976), (100_000, 98_976), (256, 192), (10, 1)])
    func keepsAReserveBesideClientConnections(limit: Int, connections: Int) {
        #expect(OpenFilesLimit.clientConnections(for: limit) == connections)
    }

    @Test func raisesTheSoftLimitToTheHardOne() throws {
        let limits = try #require(OpenFilesLimit.raise())
        #expect(limits.soft == limits.hard)
    }
}

/// A connection past the capacity: its first request is answered 503 and nothing reaches the
/// application; one that sends nothing is closed after the wait.
struct CapacityRefusalTests {
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        var parts = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { parts += 1 }
    }

    func pipeline(wait: TimeAmount = .seconds(2)) throws -> (EmbeddedChannel, Recorder) {
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
        let refusal = CapacityRefusal(problem: ProblemResponse(headers: [("Retry-After", "1")], body: "{\"status\":503}"), wait: wait)
        try channel.pipeline.syncOperations.addHandlers([refusal, recorder])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return (channel, recorder)
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func answersTheFirstRequestWith503AndPassesNothingOn() throws {
        let (channel, recorder) = try pipeline()
        try channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        let response = try written(channel)
        #expect(response.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(response.contains("content-type: application/problem+json") || response.contains("Content-Type: application/problem+json"))
        #expect(response.contains("Retry-After: 1"))
        #expect(response.hasSuffix("{\"status\":503}"))
        #expect(recorder.parts == 0)
        _ = try? channel.finish()
    }

    @Test func closesAConnectionThatSendsNoRequest() throws {
        let (channel, _) = try pipeline(wait: .seconds(2))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(try written(channel).isEmpty)
    }
}
