import Testing
import TopGunCore
import TopGunWire
@testable import DataPlane

/// `WritePath.validate`: the permanent problems of an op on its own, before any map sees it.
@Suite struct WritePathValidationTests {
    static func outcome(of op: ClientOp) -> OpOutcome? {
        var validNodeId: String?
        return withUnsafePointer(to: op) { WritePath.validate($0, validNodeId: &validNodeId) }
    }

    static let put = ClientOp(
        id: "1", mapName: "todos", key: "k", opType: "PUT",
        record: LWWRecord(value: .string("v"), timestamp: Timestamp(millis: 1, counter: 0, nodeId: "c1")))

    @Test func aWellFormedOpPasses() {
        #expect(Self.outcome(of: Self.put) == nil)
    }

    @Test func anOpTheDecoderCouldNotReadIsRejectedForGoodWithItsProblem() {
        let unreadable = ClientOp(id: "2", mapName: "", key: "", decodingProblem: "payload.ops[1].x: string is not valid UTF-8 (at byte 40)")
        let outcome = Self.outcome(of: unreadable)
        #expect(outcome?.success == false)
        #expect(outcome?.code == .badRequest)
        #expect(outcome?.error == "invalid op: payload.ops[1].x: string is not valid UTF-8 (at byte 40)")
        // The problem wins over anything else the op carries.
        var marked = Self.put
        marked.decodingProblem = "payload.ops[0]: string is not valid UTF-8"
        #expect(Self.outcome(of: marked)?.code == .badRequest)
    }
}
