import Testing
import TopGunCore
@testable import TopGunWire

/// `OP_ACK` is written directly, without the dynamic value tree; its bytes must be exactly
/// what the general path writes, whatever the ack holds.
@Suite struct OpAckFastPathTests {
    static func general(_ message: TopGunMessage) -> [UInt8] {
        MessagePackWriter.encode(WireCodec.dataValue(of: message))
    }

    static let acks: [OpAck] = [
        OpAck(lastId: "unknown"),
        OpAck(lastId: "17", achievedLevel: .applied),
        OpAck(lastId: "17", results: []),
        OpAck(lastId: "3", achievedLevel: .persisted, results: [
            OpResult(opId: "1", success: true, achievedLevel: .persisted),
            OpResult(opId: "2", success: false, achievedLevel: .fireAndForget, error: "value violates schema at /title: ✗ too long"),
            OpResult(opId: String(repeating: "9", count: 40), success: true, achievedLevel: .memory),
        ]),
        // Past 65,535 results the array header takes its 32-bit form.
        OpAck(lastId: "x", achievedLevel: .fireAndForget, results: (0..<70_000).map { OpResult(opId: String($0), success: $0 % 3 != 0, achievedLevel: .applied) }),
    ]

    @Test(arguments: acks.indices)
    func fastAckBytesEqualTheGeneralEncoding(index: Int) throws {
        let ack = Self.acks[index]
        let bytes = WireCodec().encode(.opAck(ack))
        #expect(bytes == Self.general(.opAck(ack)))
        let codec = WireCodec(limits: MessagePackLimits(maxInputBytes: 16 << 20))
        #expect(try codec.decode(bytes) == .opAck(ack))
    }

    @Test func decodingInPlaceAgreesWithDecodingAnArray() throws {
        let batch = TopGunMessage.opBatch(OpBatch(ops: [
            ClientOp(id: "1", mapName: "m", key: "k", opType: "PUT", record: LWWRecord(value: ["a": 1], timestamp: Timestamp(millis: 5, counter: 0, nodeId: "n"))),
        ]))
        for message in [batch, .ping(Ping(timestamp: 42)), .opAck(OpAck(lastId: "1"))] {
            let bytes = WireCodec().encode(message)
            let inPlace = try bytes.withUnsafeBufferPointer { buffer throws(WireDecodingError) in try WireCodec().decode(contiguous: buffer) }
            #expect(inPlace == message)
        }
        let broken: [UInt8] = [0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xc1]
        #expect(throws: WireDecodingError.self) {
            try broken.withUnsafeBufferPointer { buffer throws(WireDecodingError) in try WireCodec().decode(contiguous: buffer) }
        }
    }
}
