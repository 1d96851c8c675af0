import NIOCore
import NIOEmbedded
import Testing

@testable import DataPlane

/// Length-prefixed framing: the pure splitting rule, then the same through a channel.
@Suite struct ClusterFrameDecoderTests {
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)] + payload
    }

    /// Feeds `chunks` one after another into one accumulating buffer, as ByteToMessageHandler
    /// does, and collects every frame.
    static func split(_ chunks: [[UInt8]], limit: Int = 1024) throws -> (frames: [[UInt8]], leftover: Int) {
        var buffer = ByteBuffer()
        var frames: [[UInt8]] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let frame = try ClusterFrameDecoder.nextFrame(in: &buffer, maxFrameBytes: limit) {
                frames.append(Array(frame.readableBytesView))
            }
        }
        return (frames, buffer.readableBytes)
    }

    @Test func frameSplitIntoSingleBytesIsReassembled() throws {
        let payload = Array(0..<200).map { UInt8($0) }
        let bytes = Self.frame(payload)
        let result = try Self.split(bytes.map { [$0] })
        #expect(result.frames == [payload])
        #expect(result.leftover == 0)
    }

    @Test func lengthPrefixSplitAcrossReadsWaits() throws {
        let payload: [UInt8] = [0x80]
        let bytes = Self.frame(payload)
        for cut in 1..<bytes.count {
            let result = try Self.split([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(result.frames == [payload], "cut at \(cut)")
        }
    }

    @Test func severalFramesInOneReadComeOutInOrder() throws {
        let payloads: [[UInt8]] = [[1], [2, 2], Array(repeating: 3, count: 300), [4]]
        let merged = payloads.flatMap(Self.frame)
        let result = try Self.split([merged])
        #expect(result.frames == payloads)
        #expect(result.leftover == 0)
    }

    @Test func frameEndingInsideTheNextReadKeepsTheRest() throws {
        let first = Self.frame([1, 2, 3])
        let second = Self.frame([4, 5, 6, 7])
        let bytes = first + second
        let result = try Self.split([Array(bytes[..<(first.count + 2)])])
        #expect(result.frames == [[1, 2, 3]])
        #expect(result.leftover == 2)
    }

    @Test func frameOfExactlyTheLimitIsAccepted() throws {
        let payload = [UInt8](repeating: 7, count: 1024)
        #expect(try Self.split([Self.frame(payload)], limit: 1024).frames == [payload])
    }

    @Test func frameOneByteOverTheLimitIsRefusedFromItsHeaderAlone() {
        // Only the 4 length bytes: refused before any of the body is buffered.
        #expect(throws: ClusterFrameDecoder.Failure.frameTooLarge(size: 1025, limit: 1024)) {
            _ = try Self.split([[0, 0, 4, 1]], limit: 1024)
        }
    }

    @Test func hugeLengthIsRefused() {
        #expect(throws: ClusterFrameDecoder.Failure.frameTooLarge(size: Int(UInt32.max), limit: 16 << 20)) {
            _ = try Self.split([[0xff, 0xff, 0xff, 0xff]], limit: 16 << 20)
        }
    }

    @Test func zeroLengthFrameIsRefused() {
        #expect(throws: ClusterFrameDecoder.Failure.emptyFrame) {
            _ = try Self.split([[0, 0, 0, 0]])
        }
    }

    @Test func textProtocolGarbageIsRefusedAsOversize() {
        // "GET " read as a length is 1,195,725,856 bytes.
        #expect(throws: ClusterFrameDecoder.Failure.frameTooLarge(size: 0x4745_5420, limit: 16 << 20)) {
            _ = try Self.split([Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)], limit: 16 << 20)
        }
    }

    /// Random bytes never trap: they frame, wait for more, or are refused.
    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0..<64, using: &generator)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Small lengths are likely with a leading zero byte; half the cases start with one.
            let input = Bool.random(using: &generator) ? [0, 0] + bytes : bytes
            do {
                let result = try Self.split([input], limit: 32)
                for frame in result.frames { #expect((1...32).contains(frame.count)) }
            } catch {
                #expect(error is ClusterFrameDecoder.Failure)
            }
        }
    }

    // MARK: In a channel

    @Test func decoderInAChannelDeliversFramesAndFailsOnOversize() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClusterFrameDecoder(maxFrameBytes: 8)))
        var input = channel.allocator.buffer(capacity: 32)
        input.writeBytes(Self.frame([1, 2, 3]) + Self.frame([4]) + [0, 0])
        try channel.writeInbound(input)
        #expect(try channel.readInbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [1, 2, 3])
        #expect(try channel.readInbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [4])
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)

        var oversize = channel.allocator.buffer(capacity: 4)
        oversize.writeBytes([0, 9])
        #expect(throws: ClusterFrameDecoder.Failure.frameTooLarge(size: 9, limit: 8)) {
            try channel.writeInbound(oversize)
        }
        _ = try? channel.finish()
    }
}

/// The envelope codec: every kind round trips through a real frame; bad payloads are errors.
@Suite struct ClusterEnvelopeTests {
    static func roundTrip(_ envelope: ClusterEnvelope, limit: Int = 16 << 20) throws -> ClusterEnvelope {
        var frame = try envelope.frame(maxFrameBytes: limit)
        let payload = try #require(try ClusterFrameDecoder.nextFrame(in: &frame, maxFrameBytes: limit))
        #expect(frame.readableBytes == 0)
        return try ClusterEnvelope.decode(payload, maxFrameBytes: limit)
    }

    static func payload(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    @Test func everyKindRoundTrips() throws {
        let envelopes: [ClusterEnvelope] = [
            .hello(ClusterHello(nodeId: NodeID("node-1"), clusterId: "alpha", protocolVersion: 1, nonce: [UInt8](repeating: 4, count: 32))),
            .proof([UInt8](repeating: 9, count: 32)),
            .refuse(reason: "bad proof of the cluster secret"),
            .request(id: 1, type: "forward", body: [0x81, 0xa1, 0x61, 0x01]),
            .request(id: UInt64.max, type: "", body: []),
            .oneway(type: "backup", body: [1, 2, 3]),
            .response(id: 42, body: [0xc0]),
            .failure(id: 7, message: "no such partition"),
        ]
        for envelope in envelopes {
            #expect(try Self.roundTrip(envelope) == envelope)
        }
    }

    /// Bodies at the edges of MessagePack's bin8, bin16 and bin32 forms.
    @Test(arguments: [0, 255, 256, 65_535, 65_536, 1 << 20])
    func bodyOfAnySizeRoundTrips(size: Int) throws {
        let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try Self.roundTrip(.request(id: 3, type: "t", body: body)) == .request(id: 3, type: "t", body: body))
        #expect(try Self.roundTrip(.response(id: 3, body: body)) == .response(id: 3, body: body))
    }

    @Test func messageOverTheLimitIsNotEncoded() {
        // map(4), "k" 4, "id" 1, "t" "", "b" bin8(100): 1 + 3 + 4 + 3 + 2 + 2 + 100 bytes
        #expect(throws: ClusterTransportError.frameTooLarge(size: 115, limit: 64)) {
            _ = try ClusterEnvelope.request(id: 1, type: "", body: [UInt8](repeating: 0, count: 100)).frame(maxFrameBytes: 64)
        }
    }

    @Test func frameLengthMatchesItsPayload() throws {
        let frame = try ClusterEnvelope.oneway(type: "x", body: [1, 2]).frame(maxFrameBytes: 1024)
        let length = try #require(frame.getInteger(at: frame.readerIndex, as: UInt32.self))
        #expect(Int(length) == frame.readableBytes - 4)
    }

    @Test func payloadThatIsNotAMapIsRefused() {
        #expect(throws: ClusterEnvelopeError("frame is not a map")) {
            _ = try ClusterEnvelope.decode(Self.payload([0x01]), maxFrameBytes: 1024)
        }
    }

    @Test func truncatedMessagePackIsRefused() {
        #expect(throws: ClusterEnvelopeError.self) {
            _ = try ClusterEnvelope.decode(Self.payload([0x82, 0xa1, 0x6b]), maxFrameBytes: 1024)
        }
    }

    @Test func unknownKindIsRefused() {
        // {k: 99}
        #expect(throws: ClusterEnvelopeError("unknown frame kind 99")) {
            _ = try ClusterEnvelope.decode(Self.payload([0x81, 0xa1, 0x6b, 0x63]), maxFrameBytes: 1024)
        }
    }

    @Test func missingFieldIsNamed() {
        // {k: 4 (request), id: 1, t: "x"}: no body
        #expect(throws: ClusterEnvelopeError("b: required field is missing")) {
            _ = try ClusterEnvelope.decode(Self.payload([0x83, 0xa1, 0x6b, 0x04, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x74, 0xa1, 0x78]), maxFrameBytes: 1024)
        }
    }

    @Test func fieldOfTheWrongKindIsNamed() {
        // {k: 6 (response), id: -1, b: bin ""}
        #expect(throws: ClusterEnvelopeError("id: expected an unsigned integer")) {
            _ = try ClusterEnvelope.decode(Self.payload([0x83, 0xa1, 0x6b, 0x06, 0xa2, 0x69, 0x64, 0xff, 0xa1, 0x62, 0xc4, 0x00]), maxFrameBytes: 1024)
        }
        // {k: "x"}
        #expect(throws: ClusterEnvelopeError("k: expected an integer")) {
            _ = try ClusterEnvelope.decode(Self.payload([0x81, 0xa1, 0x6b, 0xa1, 0x78]), maxFrameBytes: 1024)
        }
    }

    @Test func unknownFieldsAreIgnored() throws {
        // {k: 3 (refuse), r: "why", z: true}
        let decoded = try ClusterEnvelope.decode(
            Self.payload([0x83, 0xa1, 0x6b, 0x03, 0xa1, 0x72, 0xa3, 0x77, 0x68, 0x79, 0xa1, 0x7a, 0xc3]), maxFrameBytes: 1024)
        #expect(decoded == .refuse(reason: "why"))
    }

    @Test func endpointsParse() {
        #expect(ClusterEndpoint("10.0.0.1:9080") == ClusterEndpoint(host: "10.0.0.1", port: 9080))
        #expect(ClusterEndpoint("node-2.internal:1") == ClusterEndpoint(host: "node-2.internal", port: 1))
        #expect(ClusterEndpoint("[::1]:9080") == ClusterEndpoint(host: "::1", port: 9080))
        for bad in ["", "host", "host:", ":9080", "host:0", "host:65536", "host:x", "[::1]", "[::1]9080"] {
            #expect(ClusterEndpoint(bad) == nil, "\(bad)")
        }
    }
}
