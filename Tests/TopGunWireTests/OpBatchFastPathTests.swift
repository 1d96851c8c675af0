import Foundation
import PropertyBased
import Testing
import TopGunCore
@testable import TopGunWire

/// The `OP_BATCH` fast path must agree with the general decoder on everything it accepts,
/// and hand everything else to it.
@Suite struct OpBatchFastPathTests {
    static func general(_ bytes: [UInt8]) throws -> TopGunMessage {
        try generalTyped(bytes)
    }

    static func generalTyped(_ bytes: [UInt8]) throws(WireDecodingError) -> TopGunMessage {
        try WireCodec().message(from: MessagePackReader().decode(bytes))
    }

    @Test func fixtureBatchTakesTheFastPathAndMatchesTheGeneralDecoder() throws {
        let bytes = try Fixtures.bytes("OP_BATCH")
        let fast = try #require(WireCodec.fastOpBatch(bytes, limits: .default))
        #expect(TopGunMessage.opBatch(fast) == (try Self.general(bytes)))
    }

    @Test func headClientBatchWithFloatMillisAndExtrasMatches() throws {
        let op: DataValue = [
            "mapName": "todos", "opType": "PUT", "key": "t1",
            "record": ["value": ["title": "a", "done": false], "timestamp": ["millis": .double(1_795_554_913_742), "counter": 0, "nodeId": "client-node-1"]],
            "timestamp": ["millis": .double(1_795_554_913_742), "counter": 0, "nodeId": "client-node-1"],
            "synced": false, "id": "1",
        ]
        let bytes = msgpackrBytes(["type": "OP_BATCH", "payload": ["ops": [op, op]]])
        let fast = try #require(WireCodec.fastOpBatch(bytes, limits: .default))
        #expect(TopGunMessage.opBatch(fast) == (try Self.general(bytes)))
        #expect(fast.ops[0].timestamp?.nodeId == "client-node-1")
        #expect(fast.ops[1].record?.timestamp.millis == 1_795_554_913_742)
    }

    @Test func aBatchDeclaringMoreOpsThanItsBytesHoldIsAnErrorNotAnAllocation() throws {
        // {type: OP_BATCH, payload: {ops: array32(2^20)}} followed by 2^20 empty maps: each
        // is one byte, so the count passes the one-byte-per-element bound, but no op the
        // fast path accepts is that small. It must hand the frame over at once (before
        // reserving room for a million ops) and the general decoder must name the problem.
        let head = MessagePackWriter.encode(["type": "OP_BATCH"])
        var bytes: [UInt8] = [0x82] + head.dropFirst() + [0xa7] + Array("payload".utf8) + [0x81, 0xa3] + Array("ops".utf8)
        let count = 1 << 20
        bytes += [0xdd, UInt8(count >> 24), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
        bytes += [UInt8](repeating: 0x80, count: count)
        #expect(WireCodec.fastOpBatch(bytes, limits: .default) == nil)
        #expect(throws: WireDecodingError.self) { try WireCodec().decode(bytes) }
    }

    @Test func nodeIdsRepeatedAcrossFramesOfAConnectionAreOneString() throws {
        let op: DataValue = ["id": "1", "mapName": "m", "key": "k", "record": ["value": 1, "timestamp": ["millis": 1, "counter": 0, "nodeId": "client-node-with-a-long-id"]]]
        let bytes = frame(["type": "OP_BATCH", "payload": ["ops": [op]]])
        var repeated = RepeatedStrings()
        let codec = WireCodec()
        func nodeId() throws -> String {
            let message = try bytes.withUnsafeBufferPointer { buffer throws(WireDecodingError) in try codec.decode(contiguous: buffer, repeated: &repeated) }
            guard case .opBatch(let batch) = message, let id = batch.ops.first?.record?.timestamp.nodeId else { throw WireDecodingError(.truncated, offset: 0) }
            return id
        }
        let first = try nodeId()
        let second = try nodeId()
        #expect(first == "client-node-with-a-long-id")
        // The same storage, not merely equal text.
        #expect(first.utf8.withContiguousStorageIfAvailable { $0.baseAddress } == second.utf8.withContiguousStorageIfAvailable { $0.baseAddress })
    }

    @Test func tombstoneRecordIsATombstoneOnBothPaths() throws {
        let op: DataValue = ["id": "2", "mapName": "m", "key": "k", "opType": "REMOVE", "record": ["value": .null, "timestamp": ["millis": 1, "counter": 0, "nodeId": "n"]]]
        let bytes = frame(["type": "OP_BATCH", "payload": ["ops": [op]]])
        let fast = try #require(WireCodec.fastOpBatch(bytes, limits: .default))
        #expect(fast.ops[0].record?.isTombstone == true)
        #expect(TopGunMessage.opBatch(fast) == (try Self.general(bytes)))
    }

    @Test(arguments: [DataValue]([
        // Each is valid for neither or only the general path; the codec's answer must be the
        // general decoder's (a typed error with the field, or the decoded message).
        ["type": "OP_BATCH", "payload": ["ops": [["mapName": "m", "key": 3]]]] as DataValue,
        ["type": "OP_BATCH", "payload": ["ops": ["nope"]]],
        ["type": "OP_BATCH", "payload": ["ops": [["mapName": "m"]]]],
        ["type": "OP_BATCH", "payload": ["ops": [["mapName": "m", "key": "k", "record": ["value": 1, "timestamp": ["millis": 1.5, "counter": 0, "nodeId": "n"]]]]]],
        ["type": "OP_BATCH", "payload": ["ops": [], "writeConcern": "SOMETIMES"]],
        ["payload": ["ops": []], "type": "OP_BATCH"],
        ["type": "OP_BATCH", "payload": ["ops": [["mapName": "m", "key": "k", "unknown": [1, 2, ["x": .null]]]], "extra": true]],
    ]))
    func unusualFramesGetTheGeneralDecodersAnswer(_ value: DataValue) throws {
        let bytes = frame(value)
        let viaCodec = Result(catching: { () throws(WireDecodingError) in try WireCodec().decode(bytes) })
        let viaGeneral = Result(catching: { () throws(WireDecodingError) in try Self.generalTyped(bytes) })
        #expect(viaCodec == viaGeneral)
    }

    @Test func randomBatchesDecodeIdenticallyOnBothPaths() async {
        let op = zip(Gen.int(in: 0...3), Gen.int(in: 0...1_000), Gen.bool, Gen.int(in: 0...2))
        await propertyCheck(count: 200, input: op.array(of: 0...20), Gen.bool) { specs, floatMillis in
            var ops: [DataValue] = []
            for (index, (keyIndex, millis, tombstone, node)) in specs.enumerated() {
                let m: DataValue = floatMillis ? .double(Double(1_700_000_000_000 + millis)) : .int(Int64(1_700_000_000_000 + millis))
                let ts: DataValue = ["millis": m, "counter": .int(Int64(index % 3)), "nodeId": .string("node-\(node)-with-a-long-uuid-like-suffix")]
                ops.append(["id": .string(String(index + 1)), "mapName": "m", "key": .string("k\(keyIndex)"), "record": ["value": tombstone ? .null : ["n": .int(Int64(millis)), "s": "x"], "timestamp": ts], "timestamp": ts, "synced": false])
            }
            let bytes = msgpackrBytes(["type": "OP_BATCH", "payload": ["ops": .array(ops)]])
            let fast = WireCodec.fastOpBatch(bytes, limits: .default)
            #expect(fast != nil)
            #expect(fast.map(TopGunMessage.opBatch) == (try? Self.general(bytes)))
        }
    }
}

extension Result where Failure == WireDecodingError {
    init(catching body: () throws(WireDecodingError) -> Success) {
        do { self = .success(try body()) } catch { self = .failure(error) }
    }
}
