import Testing
import TopGunCore
@testable import TopGunWire

/// Every string of a frame must be valid UTF-8: member names and values, read or ignored, at
/// any depth. Where the bad bytes lie inside one op (of `OP_BATCH`, `CLIENT_OP` or an HTTP sync
/// body) that op alone is marked (`decodingProblem`) and the rest of the frame decodes; anywhere
/// else the frame is refused.
@Suite struct StrictUTF8Tests {
    /// Stands in for the invalid bytes while a frame is built from Swift strings.
    static let marker = Array("@BAD@".utf8)
    /// As long as the marker: "x", a two-byte lead without its continuation, 0xff, "x".
    static let invalid: [UInt8] = [0x78, 0xc3, 0x28, 0xff, 0x78]

    /// `bytes` with the one occurrence of the marker replaced by invalid UTF-8.
    static func corrupted(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var found: Int?
        for start in 0...(bytes.count - marker.count) where Array(bytes[start..<(start + marker.count)]) == marker {
            precondition(found == nil, "the marker appears twice")
            found = start
        }
        guard let start = found else { preconditionFailure("no marker in the frame") }
        out.replaceSubrange(start..<(start + marker.count), with: invalid)
        return out
    }

    static func timestamp(nodeId: DataValue = "client-node-1") -> DataObject {
        ["millis": 1_700_000_000_000, "counter": 0, "nodeId": nodeId]
    }

    /// A put as the HEAD client writes it, with `edit` applied to its fields.
    static func op(_ id: String, edit: (inout DataObject) -> Void = { _ in }) -> DataValue {
        let record: DataObject = ["value": ["title": "t", "done": false], "timestamp": .object(timestamp())]
        var op: DataObject = ["id": .string(id), "mapName": "todos", "key": .string("k" + id), "opType": "PUT"]
        op["record"] = .object(record)
        edit(&op)
        return .object(op)
    }

    static func batch(_ ops: [DataValue], payloadExtra: [(String, DataValue)] = [], extra: [(String, DataValue)] = []) -> DataValue {
        var payload: DataObject = ["ops": .array(ops)]
        for (key, value) in payloadExtra { payload[key] = value }
        var message: DataObject = ["type": "OP_BATCH", "payload": .object(payload)]
        for (key, value) in extra { message[key] = value }
        return .object(message)
    }

    static func record(_ op: inout DataObject, _ edit: (inout DataObject) -> Void) {
        guard case .object(var record)? = op["record"] else { return }
        edit(&record)
        op["record"] = .object(record)
    }

    /// Every place inside an op where a string can hide.
    static let placesInAnOp: [(String, @Sendable (inout DataObject) -> Void)] = [
        ("an unknown member's name", { $0["@BAD@"] = 1 }),
        ("an unknown member's name, its value nil", { $0["@BAD@"] = .null }),
        ("an unknown member's value", { $0["extra"] = "@BAD@" }),
        ("a key of a map in an ignored value", { $0["extra"] = ["@BAD@": 1] }),
        ("a map nested in an ignored value", { $0["extra"] = ["a": ["b": ["@BAD@"]]] }),
        ("an array element of an ignored value", { $0["extra"] = [1, "x", "@BAD@"] }),
        ("a string of the record's value", { op in StrictUTF8Tests.record(&op) { $0["value"] = ["title": "@BAD@"] } }),
        ("a key of the record's value", { op in StrictUTF8Tests.record(&op) { $0["value"] = ["@BAD@": 1] } }),
        ("an array in the record's value", { op in StrictUTF8Tests.record(&op) { $0["value"] = ["tags": ["a", ["b": "@BAD@"]]] } }),
        ("an unknown member of the record", { op in StrictUTF8Tests.record(&op) { $0["@BAD@"] = 1 } }),
        ("an unknown member of the record's timestamp", { op in
            StrictUTF8Tests.record(&op) { var ts = StrictUTF8Tests.timestamp(); ts["@BAD@"] = "x"; $0["timestamp"] = .object(ts) }
        }),
        ("the node id", { op in StrictUTF8Tests.record(&op) { $0["timestamp"] = .object(StrictUTF8Tests.timestamp(nodeId: "@BAD@")) } }),
        ("the op's own timestamp", { $0["timestamp"] = .object(StrictUTF8Tests.timestamp(nodeId: "@BAD@")) }),
        ("mapName", { $0["mapName"] = "@BAD@" }),
        ("key", { $0["key"] = "@BAD@" }),
        ("opType", { $0["opType"] = "@BAD@" }),
        ("orTag", { $0["orTag"] = "@BAD@" }),
        ("writeConcern", { $0["writeConcern"] = "@BAD@" }),
        ("the OR record's value", { op in
            op["record"] = nil
            op["opType"] = "OR_ADD"
            op["orRecord"] = ["value": ["x": "@BAD@"], "timestamp": .object(StrictUTF8Tests.timestamp()), "tag": "t-1"]
        }),
    ]

    static let placeNames = placesInAnOp.map(\.0)

    static func decodeBoth(_ bytes: [UInt8]) throws(WireDecodingError) -> TopGunMessage {
        let whole = try WireCodec().decode(bytes)
        let inPlace = try bytes.withUnsafeBufferPointer { buffer throws(WireDecodingError) in try WireCodec().decode(contiguous: buffer) }
        #expect(whole == inPlace, "decode and decode(contiguous:) disagree")
        return whole
    }

    // MARK: - Inside an op: that op alone is refused

    @Test(arguments: placeNames)
    func invalidUTF8InOneOpMarksThatOpAndKeepsTheOthers(place: String) throws {
        let edit = try #require(Self.placesInAnOp.first { $0.0 == place }?.1)
        let good = [Self.op("1"), Self.op("3")]
        for encode in [frame, msgpackrBytes] {
            let bytes = Self.corrupted(encode(Self.batch([good[0], Self.op("2", edit: edit), good[1]])))
            #expect(WireCodec.fastOpBatch(bytes, limits: .default) == nil, "the fast path must hand the frame over")
            guard case .opBatch(let batch) = try Self.decodeBoth(bytes) else {
                Issue.record("not an OP_BATCH")
                return
            }
            guard case .opBatch(let clean) = try WireCodec().decode(encode(Self.batch(good))) else { return }
            try #require(batch.ops.count == 3)
            #expect(batch.ops[0] == clean.ops[0])
            #expect(batch.ops[2] == clean.ops[1])
            let bad = batch.ops[1]
            #expect(bad.id == "2")
            let problem = try #require(bad.decodingProblem)
            #expect(problem.hasPrefix("payload.ops[1]"), "\(problem)")
            #expect(problem.contains("not valid UTF-8"), "\(problem)")
            #expect(batch.ops[0].decodingProblem == nil && batch.ops[2].decodingProblem == nil)
        }
    }

    @Test func theProblemNamesTheFieldWhereItIsKnown() throws {
        let bytes = Self.corrupted(frame(Self.batch([Self.op("1") { op in Self.record(&op) { $0["value"] = ["title": "@BAD@"] } }])))
        guard case .opBatch(let batch) = try WireCodec().decode(bytes) else { throw WireDecodingError(.notAMap) }
        #expect(batch.ops[0].decodingProblem?.hasPrefix("payload.ops[0].record.value.title: string is not valid UTF-8") == true)
    }

    @Test func anOpWhoseIdIsUnreadableIsMarkedWithoutAnId() throws {
        let bytes = Self.corrupted(frame(Self.batch([Self.op("1"), Self.op("2") { $0["id"] = "@BAD@" }])))
        guard case .opBatch(let batch) = try Self.decodeBoth(bytes) else { throw WireDecodingError(.notAMap) }
        #expect(batch.ops[0].decodingProblem == nil)
        #expect(batch.ops[1].id == nil)
        #expect(batch.ops[1].decodingProblem?.hasPrefix("payload.ops[1].id") == true)
    }

    @Test func everyBadOpOfABatchIsMarked() throws {
        var bytes = frame(Self.batch([Self.op("1") { $0["x"] = "@BAD@" }, Self.op("2"), Self.op("3") { $0["y"] = "@BAD@" }]))
        // Two markers: corrupt them one at a time.
        let first = try #require((0...(bytes.count - Self.marker.count)).first { Array(bytes[$0..<($0 + Self.marker.count)]) == Self.marker })
        bytes.replaceSubrange(first..<(first + Self.marker.count), with: Self.invalid)
        bytes = Self.corrupted(bytes)
        guard case .opBatch(let batch) = try Self.decodeBoth(bytes) else { throw WireDecodingError(.notAMap) }
        #expect(batch.ops.map { $0.decodingProblem != nil } == [true, false, true])
        #expect(batch.ops.map(\.id) == ["1", "2", "3"])
    }

    @Test func aBadOpInAFrameThatIsBrokenElsewhereLeavesTheFrameRefused() {
        let bytes = Self.corrupted(frame(Self.batch([Self.op("1") { $0["x"] = "@BAD@" }, Self.op("2") { $0["mapName"] = 5 }])))
        let error = decodingError(bytes)
        #expect(error?.kind == .wrongType(expected: "string, got number"))
        #expect(error?.field == "payload.ops[1].mapName")
        // Cut short: the op cannot even be stepped over.
        let truncated = Array(bytes.dropLast(3))
        #expect(decodingError(truncated)?.kind == .truncated)
    }

    @Test func aBadClientOpIsMarked() throws {
        let bytes = Self.corrupted(frame(["type": "CLIENT_OP", "payload": Self.op("7") { $0["extra"] = ["@BAD@"] }]))
        guard case .clientOp(let single) = try Self.decodeBoth(bytes) else { throw WireDecodingError(.notAMap) }
        #expect(single.op.id == "7")
        #expect(single.op.decodingProblem?.hasPrefix("payload.extra[0]: string is not valid UTF-8") == true)
    }

    @Test func aBadOpOfAnHTTPSyncBodyIsMarked() throws {
        let body: DataValue = ["clientId": "c1", "clientHlc": .object(Self.timestamp()), "operations": [Self.op("1"), Self.op("2") { $0["@BAD@"] = true }]]
        guard case .httpSyncRequest(let request) = try Self.decodeBoth(Self.corrupted(frame(body))) else { throw WireDecodingError(.notAMap) }
        let ops = try #require(request.operations)
        #expect(ops[0].decodingProblem == nil && ops[0].key == "k1")
        #expect(ops[1].id == "2")
        #expect(ops[1].decodingProblem?.hasPrefix("operations[1]") == true)
    }

    // MARK: - Outside any op: the frame is refused

    static let placesOutsideOps: [(String, DataValue)] = [
        ("an unknown member of the message", batch([op("1")], extra: [("@BAD@", 1)])),
        ("an unknown member's value of the message", batch([op("1")], extra: [("extra", ["a": "@BAD@"])])),
        ("an unknown member of the payload", batch([op("1")], payloadExtra: [("@BAD@", 1)])),
        ("an unknown member of the payload, its value nil", batch([op("1")], payloadExtra: [("@BAD@", .null)])),
        ("an unknown member's value of the payload", batch([op("1")], payloadExtra: [("meta", [1, ["@BAD@"]])])),
        ("the batch's write concern", batch([op("1")], payloadExtra: [("writeConcern", "@BAD@")])),
        ("a second payload the decoder ignores", .object(DataObject(fields: [
            .init(key: "type", value: "OP_BATCH"), .init(key: "payload", value: ["ops": [op("1")]]),
            .init(key: "payload", value: ["ops": [op("9") { $0["x"] = "@BAD@" }]]),
        ]))),
        ("the type", ["type": "@BAD@", "payload": ["ops": [op("1")]]]),
        ("a PING's member name", ["type": "PING", "timestamp": 1, "@BAD@": 1]),
        ("a PING's ignored value", ["type": "PING", "timestamp": 1, "extra": ["x": ["@BAD@"]]]),
        ("a CLIENT_OP's envelope", ["type": "CLIENT_OP", "payload": op("1"), "@BAD@": 1]),
        ("a query", ["type": "QUERY_SUB", "payload": ["queryId": "q", "mapName": "m", "query": ["where": ["title": "@BAD@"]]]]),
        ("an HTTP sync body's syncMaps", ["clientId": "c1", "clientHlc": .object(timestamp()), "operations": [op("1")],
                                          "syncMaps": [["mapName": "@BAD@", "lastSyncTimestamp": .object(timestamp())]]]),
    ]

    @Test(arguments: placesOutsideOps.map(\.0))
    func invalidUTF8OutsideAnyOpRefusesTheFrame(place: String) throws {
        let value = try #require(Self.placesOutsideOps.first { $0.0 == place }?.1)
        for encode in [frame, msgpackrBytes] {
            let bytes = Self.corrupted(encode(value))
            #expect(WireCodec.fastOpBatch(bytes, limits: .default) == nil)
            #expect(decodingError(bytes)?.kind == .invalidUTF8)
            let inPlace = bytes.withUnsafeBufferPointer { buffer -> WireDecodingError? in
                do throws(WireDecodingError) {
                    _ = try WireCodec().decode(contiguous: buffer)
                    return nil
                } catch {
                    return error
                }
            }
            #expect(inPlace?.kind == .invalidUTF8)
        }
    }

    // MARK: - Valid frames keep the fast path

    @Test func ignoredMembersWithValidMultiByteTextStayOnTheFastPath() throws {
        let op = Self.op("1") {
            $0["extra"] = ["ключ": "🙂", "list": ["é", ["ß": .null]]]
            $0["заметка"] = .null
        }
        let bytes = msgpackrBytes(Self.batch([op], payloadExtra: [("meta", ["ä": "ö"])], extra: [("trace", "✓")]))
        let fast = try #require(WireCodec.fastOpBatch(bytes, limits: .default))
        #expect(TopGunMessage.opBatch(fast) == (try OpBatchFastPathTests.general(bytes)))
    }

    @Test func anIgnoredMemberTheFastPathCannotStepOverIsLeftToTheGeneralDecoder() throws {
        // msgpackr's `undefined` (ext 0) in an ignored member: the general decoder reads it as nil.
        var bytes = frame(Self.batch([Self.op("1") { $0["extra"] = "@BAD@" }]))
        let start = try #require((0...(bytes.count - 6)).first { Array(bytes[$0..<($0 + 6)]) == [0xa5] + Self.marker })
        bytes.replaceSubrange(start..<(start + 6), with: [0xd4, 0x00, 0x00])
        #expect(WireCodec.fastOpBatch(bytes, limits: .default) == nil)
        guard case .opBatch(let batch) = try WireCodec().decode(bytes) else { throw WireDecodingError(.notAMap) }
        #expect(batch.ops[0].decodingProblem == nil && batch.ops[0].key == "k1")
    }
}
