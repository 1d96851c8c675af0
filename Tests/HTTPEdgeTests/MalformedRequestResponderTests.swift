import Foundation
import HTTPEdge
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// What reaches the application: request parts and errors.
final class ApplicationRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var parts: [HTTPServerRequestPart] = []
    var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parts.append(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }
}

/// An HTTP/1 server pipeline as Hummingbird builds it (no NIO error handler), with the
/// responder right after the decoder and a recorder standing for the application.
struct EdgePipeline {
    let channel = EmbeddedChannel()
    let application = ApplicationRecorder()

    init(limits: HTTPRequestLimits = .standard, extra: [any ChannelHandler] = []) throws {
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderBytes
        decoderLimits.maxHeaderListSize = limits.maxHeaderBytes
        decoderLimits.maxHeaderFieldCount = limits.maxHeaderFields
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
        let responder = MalformedRequestResponder(limits: limits) { refusal in
            ProblemResponse(headers: [("X-Test", "yes")], body: "{\"status\":\(refusal.status.code),\"detail\":\"\(refusal.detail)\"}")
        }
        try channel.pipeline.syncOperations.addHandlers([responder] + extra + [application])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    func send(_ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    /// Everything written to the socket so far, as text.
    func written() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += String(buffer: buffer)
        }
        return text
    }

    /// The application answers its oldest request with an empty 200.
    func respond(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = ["Content-Length": "0"]) throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        if status != .switchingProtocols {
            try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        }
    }
}

struct MalformedRequestResponderTests {
    @Test func anUnknownMethodIs501ProblemJSONAndTheConnectionCloses() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send("FROB / HTTP/1.1\r\nHost: x\r\n\r\n")
        let written = try pipeline.written()
        #expect(written.hasPrefix("HTTP/1.1 501 Not Implemented\r\n"))
        #expect(written.lowercased().contains("content-type: application/problem+json\r\n"))
        #expect(written.lowercased().contains("connection: close\r\n"))
        #expect(written.contains("X-Test: yes\r\n"))
        #expect(written.hasSuffix("{\"status\":501,\"detail\":\"the request method is not one this server implements\"}"))
        #expect(pipeline.application.parts.isEmpty && pipeline.application.errors.isEmpty)
        #expect(!pipeline.channel.isActive)
    }

    @Test func aHeadOverTheLimitIs431AndAPathCountsTowardIt() throws {
        let limits = HTTPRequestLimits(maxHeaderBytes: 1024, maxHeaderFields: 10)
        for request in [
            "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 2000) + "\r\n\r\n",
            "GET /" + String(repeating: "p", count: 2000) + " HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n" + (0..<20).map { "X-\($0): 1\r\n" }.joined() + "\r\n",
        ] {
            let pipeline = try EdgePipeline(limits: limits)
            try pipeline.send(request)
            let written = try pipeline.written()
            #expect(written.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(written.prefix(80))")
            #expect(written.contains("limited to 1024 bytes and 10 fields"))
            #expect(pipeline.application.parts.isEmpty)
        }
    }

    @Test(arguments: [
        "POST / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/9.9\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ])
    func otherSyntaxErrorsAre400(request: String) throws {
        let pipeline = try EdgePipeline()
        try pipeline.send(request)
        let written = try pipeline.written()
        #expect(written.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(written.prefix(80))")
        #expect(pipeline.application.parts.isEmpty)
    }

    @Test func aControlByteInThePathIs400() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send(Array("GET /a".utf8) + [0x7F] + Array(" HTTP/1.1\r\n\r\n".utf8))
        #expect(try pipeline.written().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }

    @Test func aValidRequestPassesUntouched() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(pipeline.application.parts.count == 2)
        try pipeline.respond()
        let written = try pipeline.written()
        #expect(written.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(!written.lowercased().contains("connection: close"))
        #expect(pipeline.channel.isActive)
    }

    @Test func aRefusalWaitsForTheResponsesOwedBeforeIt() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send("GET /one HTTP/1.1\r\n\r\nFROB / HTTP/1.1\r\n\r\n")
        #expect(pipeline.application.parts.count == 2)
        #expect(try pipeline.written().isEmpty)
        try pipeline.respond()
        let written = try pipeline.written()
        let first = try #require(written.range(of: "HTTP/1.1 200 OK\r\n"))
        let second = try #require(written.range(of: "HTTP/1.1 501 Not Implemented\r\n"))
        #expect(first.lowerBound < second.lowerBound)
    }

    @Test func anErrorInsideABodyGoesToTheApplicationReadingIt() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        #expect(pipeline.application.errors.count == 1)
        #expect(try pipeline.written().isEmpty)
    }

    @Test func aProtocolSwitchRemovesTheHandler() throws {
        let pipeline = try EdgePipeline()
        try pipeline.send("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        try pipeline.respond(status: .switchingProtocols, headers: ["Upgrade": "websocket", "Connection": "Upgrade"])
        #expect(throws: (any Error).self) { try pipeline.channel.pipeline.syncOperations.handler(type: MalformedRequestResponder.self) }
    }
}

struct OneResponsePerConnectionTests {
    @Test func everyResponseSaysCloseAndEndsTheConnection() throws {
        let pipeline = try EdgePipeline(extra: [OneResponsePerConnection()])
        try pipeline.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try pipeline.respond()
        let written = try pipeline.written()
        #expect(written.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(written.lowercased().contains("connection: close\r\n"))
        #expect(!pipeline.channel.isActive)
    }

    @Test func anUpgradePassesUntouchedAndTheHandlerLeaves() throws {
        let pipeline = try EdgePipeline(extra: [OneResponsePerConnection()])
        try pipeline.send("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        try pipeline.respond(status: .switchingProtocols, headers: ["Upgrade": "websocket", "Connection": "Upgrade"])
        let written = try pipeline.written()
        #expect(written.contains("Connection: Upgrade\r\n"))
        #expect(!written.lowercased().contains("connection: close"))
        #expect(pipeline.channel.isActive)
        #expect(throws: (any Error).self) { try pipeline.channel.pipeline.syncOperations.handler(type: OneResponsePerConnection.self) }
    }
}
