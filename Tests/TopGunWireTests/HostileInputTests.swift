import PropertyBased
import Testing
import TopGunCore
import TopGunWire

/// Malformed, truncated, oversized and mistyped frames end as a typed `WireDecodingError`
/// naming what is wrong, never as a crash, a hang or a large allocation.
@Suite struct HostileInputTests {
    // MARK: - Random and truncated bytes

    @Test func randomBytesDecodeOrThrowATypedError() async {
        await propertyCheck(count: 3000, input: Gen.uint8().array(of: 0...64)) { bytes in
            // `decode` throws only WireDecodingError (typed throws); reaching the end is the property.
            _ = decodingError(bytes)
            _ = try? MessagePackReader().decode(bytes)
            _ = try? JSONFrameReader().decode(bytes)
        }
    }

    @Test func randomlyCorruptedFixturesDecodeOrThrowATypedError() async throws {
        let fixtures = try Fixtures.names.map { try Fixtures.bytes($0) }
        try #require(!fixtures.isEmpty)
        await propertyCheck(
            count: 3000, input: Gen.int(in: 0...(fixtures.count - 1)), Gen.int(in: 0...4096), Gen.uint8()
        ) { which, position, byte in
            var bytes = fixtures[which]
            bytes[position % bytes.count] = byte
            _ = decodingError(bytes)
        }
    }

    @Test(arguments: Fixtures.names)
    func everyTruncationOfAFixtureThrows(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        for length in 0..<bytes.count {
            let error = try #require(decodingError(Array(bytes[..<length])), "\(name) cut at \(length) decoded")
            // A cut inside a value is `truncated`; a cut after a container header leaves fewer
            // bytes than the declared element count can need, which is caught up front.
            switch error.kind {
            case .truncated, .containerLimitExceeded: break
            default: Issue.record("\(name) cut at \(length): \(error)")
            }
        }
    }

    // MARK: - Limits

    @Test func deepNestingThrowsDepthLimitExceeded() {
        let arrays = [UInt8](repeating: 0x91, count: 100_000) + [0xc0]
        #expect(decodingError(arrays)?.kind == .depthLimitExceeded(limit: MessagePackLimits.default.maxDepth))
        var maps: [UInt8] = []
        for _ in 0..<50_000 { maps += [0x81, 0xa1, 0x61] }
        maps.append(0xc0)
        #expect(decodingError(maps)?.kind == .depthLimitExceeded(limit: MessagePackLimits.default.maxDepth))
        let json = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let jsonKind = decodingKind { () throws(WireDecodingError) in try JSONFrameReader().decode(json) }
        #expect(jsonKind == .depthLimitExceeded(limit: MessagePackLimits.default.maxDepth))
    }

    @Test func jsonWithARepeatedMemberNameIsRefused() {
        // JSON.parse would keep the last; which one the sender meant is a guess.
        let kind = decodingKind { () throws(WireDecodingError) in try JSONFrameReader().decode(#"{"type":"PING","type":"AUTH"}"#) }
        guard case .invalidJSON(let why)? = kind else {
            Issue.record("expected invalidJSON, got \(String(describing: kind))")
            return
        }
        #expect(why.contains("repeated"))
        // A long repeated name is not echoed back whole.
        let long = String(repeating: "n", count: 10_000)
        let longKind = decodingKind { () throws(WireDecodingError) in try JSONFrameReader().decode("{\"\(long)\":1,\"\(long)\":2}") }
        if case .invalidJSON(let why)? = longKind { #expect(why.count < 200, "\(why.count) characters") } else { Issue.record("expected invalidJSON") }
        // Canonically equivalent names are two names in JSON.
        #expect(throws: Never.self) { try JSONFrameReader().decode("{\"\u{E9}\":1,\"e\u{301}\":2}") }
    }

    @Test func nodesBufferFormIsBinaryWhateverWayItsBytesAreWritten() throws {
        #expect(try JSONFrameReader().decode(#"{"type":"Buffer","data":[1,2.0,255]}"#) == .binary([1, 2, 255]))
        guard case .object = try JSONFrameReader().decode(#"{"type":"Buffer","data":[1,256]}"#) else {
            Issue.record("a byte out of range is no binary")
            return
        }
    }

    @Test func nestingWithinTheLimitDecodes() throws {
        let depth = MessagePackLimits.default.maxDepth
        let bytes = [UInt8](repeating: 0x91, count: depth) + [0xc0]
        _ = try MessagePackReader().decode(bytes)
        #expect(throws: WireDecodingError.self) {
            try MessagePackReader().decode([UInt8](repeating: 0x91, count: depth + 1) + [0xc0])
        }
    }

    @Test(arguments: ["db ffffffff", "dd ffffffff", "df ffffffff", "c6 ffffffff", "c9 ffffffff ff", "dc ffff", "de ffff"])
    func hugeDeclaredLengthsThrowQuickly(header: String) {
        let bytes = hex(header) + [0x01, 0x02, 0x03]
        var error: WireDecodingError?
        let elapsed = ContinuousClock().measure {
            error = decodingError(bytes)
        }
        #expect(error != nil)
        #expect([.truncated, .containerLimitExceeded(limit: MessagePackLimits.default.maxContainerCount)].contains(error?.kind))
        #expect(elapsed < .milliseconds(200))
    }

    @Test func containerCountAboveTheLimitThrows() {
        let codec = WireCodec(limits: MessagePackLimits(maxContainerCount: 3))
        let bytes = hex("94 01 02 03 04")
        #expect(decodingError(bytes, codec: codec)?.kind == .containerLimitExceeded(limit: 3))
    }

    @Test func inputOverMaxInputBytesThrowsSizeLimitExceeded() {
        let small = WireCodec(limits: MessagePackLimits(maxInputBytes: 16))
        let ping = frame(["type": "PING", "timestamp": 1])
        #expect(ping.count > 16)
        #expect(decodingError(ping, codec: small)?.kind == .sizeLimitExceeded(limit: 16))
        #expect(throws: WireDecodingError(.sizeLimitExceeded(limit: 16))) {
            try small.decode(json: #"{"type":"PING","timestamp":1}"#)
        }
        let huge = [UInt8](repeating: 0xc0, count: MessagePackLimits.default.maxInputBytes + 1)
        #expect(decodingError(huge)?.kind == .sizeLimitExceeded(limit: MessagePackLimits.default.maxInputBytes))
    }

    // MARK: - Malformed MessagePack

    @Test func invalidUTF8Throws() {
        #expect(decodingError(hex("a2 c328"))?.kind == .invalidUTF8)
        #expect(decodingError(hex("81 a1ff 01"))?.kind == .invalidUTF8)
        // Lone surrogate encoded in UTF-8 (CESU) is not valid UTF-8 either.
        #expect(decodingError(hex("a3 eda080"))?.kind == .invalidUTF8)
        // ASCII is checked eight bytes at a time: a bad byte in any lane, or in the tail, is found.
        for position in 0..<19 {
            var text = [UInt8](repeating: 0x61, count: 19)
            text[position] = 0xff
            #expect(decodingError([0xb3] + text)?.kind == .invalidUTF8, "bad byte at \(position)")
        }
    }

    @Test func longASCIIAndMultiByteStringsDecode() throws {
        for text in ["", "a", "abcdefgh", "abcdefghi", String(repeating: "x", count: 300), "ключ-with-ascii-tail", "🙂🙂🙂🙂🙂", "aaaaaaaé"] {
            let bytes = MessagePackWriter.encode(.string(text))
            #expect(try MessagePackReader().decode(bytes) == .string(text))
        }
    }

    @Test func formatByteC1Throws() {
        let error = decodingError(hex("c1"))
        #expect(error?.kind == .invalidFormatByte(0xc1))
        #expect(error?.offset == 0)
        #expect(decodingError(hex("81 a474797065 c1"))?.kind == .invalidFormatByte(0xc1))
    }

    @Test func trailingBytesThrow() {
        #expect(decodingError(hex("c0 c0"))?.kind == .trailingBytes(count: 1))
        let ping = frame(["type": "PING", "timestamp": 1])
        #expect(decodingError(ping + [0x00, 0x00])?.kind == .trailingBytes(count: 2))
    }

    @Test func aFrameThatIsNotAMapThrows() {
        #expect(decodingError(hex("c0"))?.kind == .notAMap)
        #expect(decodingError(hex("92 01 02"))?.kind == .notAMap)
    }

    // MARK: - Messages

    @Test func unknownTypeThrowsUnknownType() {
        let error = decodingError(frame(["type": "NOT_A_MESSAGE"]))
        #expect(error?.kind == .unknownType("NOT_A_MESSAGE"))
        #expect(error?.field == "type")
    }

    @Test func missingOrNonStringTypeThrows() {
        #expect(decodingError(frame(["token": "abc"]))?.kind == .missingType)
        let error = decodingError(frame(["type": 5]))
        #expect(error?.field == "type")
        #expect(error.map { if case .wrongType = $0.kind { true } else { false } } == true)
    }

    static func wrongTypeField(_ value: DataValue) -> String? {
        guard let error = decodingError(frame(value)), case .wrongType = error.kind else { return nil }
        return error.field
    }

    @Test func wrongFieldTypesNameTheField() {
        #expect(Self.wrongTypeField(["type": "PING", "timestamp": "soon"]) == "timestamp")
        #expect(Self.wrongTypeField(["type": "OP_BATCH", "payload": ["ops": ["a": 1]]]) == "payload.ops")
        #expect(Self.wrongTypeField(["type": "OP_BATCH", "payload": "ops"]) == "payload")
        let op: DataValue = ["mapName": "m", "key": "k"]
        let badOp: DataValue = ["mapName": "m", "key": 7]
        #expect(Self.wrongTypeField(["type": "OP_BATCH", "payload": ["ops": [op, badOp]]]) == "payload.ops[1].key")
        let record: DataValue = ["value": 1, "timestamp": ["millis": 1, "counter": "0", "nodeId": "n"]]
        #expect(
            Self.wrongTypeField(["type": "OP_BATCH", "payload": ["ops": [["mapName": "m", "key": "k", "record": record]]]])
                == "payload.ops[0].record.timestamp.counter")
        #expect(Self.wrongTypeField(["type": "SYNC_RESP_BUCKETS", "payload": ["mapName": "m", "path": "", "buckets": ["a": "x"]]]) == "payload.buckets.a")
        #expect(Self.wrongTypeField(["type": "JOURNAL_EVENT", "event": 3]) == "event")
        #expect(Self.wrongTypeField(["type": "SERVER_EVENT", "payload": ["mapName": "m", "eventType": "PUT", "key": 1]]) == "payload.key")
        #expect(Self.wrongTypeField(["type": "COUNTER_SYNC", "payload": ["name": "c", "state": ["positive": ["n1": "x"]]]]) == "payload.state.positive.n1")
        #expect(Self.wrongTypeField(["type": "BATCH", "count": 1, "data": "bytes"]) == "data")
    }

    @Test func nonIntegralFloatWhereAnIntegerIsRequiredThrowsInvalidValue() {
        let error = decodingError(frame(["type": "LOCK_GRANTED", "payload": ["requestId": "r", "name": "l", "fencingToken": 1.5]]))
        #expect(error?.field == "payload.fencingToken")
        #expect(error.map { if case .invalidValue = $0.kind { true } else { false } } == true)
        // A whole float is an integer (msgpackr writes large integers as float64).
        #expect(decodingError(frame(["type": "LOCK_GRANTED", "payload": ["requestId": "r", "name": "l", "fencingToken": 2.0]])) == nil)
    }

    @Test func outOfRangeAndUnknownValuesThrowInvalidValue() {
        func invalidValueField(_ value: DataValue) -> String? {
            guard let error = decodingError(frame(value)), case .invalidValue = error.kind else { return nil }
            return error.field
        }
        let timestamp: DataValue = ["millis": 1, "counter": 0, "nodeId": "n"]
        #expect(invalidValueField(["type": "SYNC_RESP_ROOT", "payload": ["mapName": "m", "rootHash": -1, "timestamp": timestamp]]) == "payload.rootHash")
        #expect(invalidValueField(["type": "SYNC_RESP_ROOT", "payload": ["mapName": "m", "rootHash": 4_294_967_296, "timestamp": timestamp]]) == "payload.rootHash")
        #expect(invalidValueField(["type": "QUERY_UPDATE", "payload": ["queryId": "q", "key": "k", "changeType": "MOVE"]]) == "payload.changeType")
        #expect(invalidValueField(["type": "OP_BATCH", "payload": ["ops": [], "writeConcern": "SOMEDAY"]]) == "payload.writeConcern")
        #expect(invalidValueField(["type": "PING", "timestamp": .uint(UInt64.max)]) == nil)  // a Double field takes any number
        #expect(invalidValueField(["type": "CLIENT_APPLY_ACK", "cursor": .uint(UInt64.max)]) == "cursor")
    }

    @Test func missingRequiredFieldThrowsMissingFieldWithItsPath() {
        func missingField(_ value: DataValue) -> String? {
            guard let error = decodingError(frame(value)), error.kind == .missingField else { return nil }
            return error.field
        }
        #expect(missingField(["type": "AUTH"]) == "token")
        #expect(missingField(["type": "AUTH", "token": .null]) == "token")
        #expect(missingField(["type": "OP_BATCH", "payload": ["ops": [["key": "k"]]]]) == "payload.ops[0].mapName")
        #expect(missingField(["type": "OP_ACK"]) == "payload.lastId")
        #expect(missingField(["type": "SERVER_EVENT"]) == "payload")
        #expect(missingField(["type": "JOURNAL_EVENT", "event": ["sequence": "1"]]) == "event.type")
        #expect(missingField(["clientId": "c"]) == "clientHlc")
        #expect(missingField(["serverHlc": ["millis": 1, "counter": 0]]) == "serverHlc.nodeId")
    }

    @Test func invalidJSONThrows() {
        for text in ["", "{", #"{"type":}"#, "[1,]", #"{"a":1} x"#, #""\ud800""#, "01x"] {
            #expect(throws: WireDecodingError.self) { try WireCodec().decode(json: text) }
        }
        let kind = decodingKind { () throws(WireDecodingError) in try WireCodec().decode(json: "{") }
        #expect(kind.map { if case .invalidJSON = $0 { true } else { false } } == true)
    }

    /// The kind of error `body` throws, or nil when it does not throw.
    func decodingKind<T>(_ body: () throws(WireDecodingError) -> T) -> WireDecodingError.Kind? {
        do {
            _ = try body()
            return nil
        } catch {
            return error.kind
        }
    }
}
