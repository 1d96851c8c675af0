import Tenancy
import TopGunWire

/// `OP_BATCH` and `CLIENT_OP` (protocol.md §6.6.1): the write path, then the ack when the
/// write concern is met (through the session's ack queue, in order).
public struct WriteHandler: Sendable {
    let writes: WritePath
    let persistTimeout: Duration
    let metrics: DataPlaneMetrics

    public init(writes: WritePath, persistTimeout: Duration, metrics: DataPlaneMetrics) {
        self.writes = writes
        self.persistTimeout = persistTimeout
        self.metrics = metrics
    }

    func handle(_ ops: [ClientOp], batchConcern: WriteConcern?, timeout: Double?, context: RequestContext, session: inout SessionState) async {
        let started = ContinuousClock.now
        if ops.isEmpty {
            session.acknowledge(PendingAck(ticket: nil, ack: .opAck(OpAck(lastId: "unknown", achievedLevel: batchConcern ?? .persisted)), timeout: .zero))
            return
        }
        let outcome = await writes.apply(ops, batchConcern: batchConcern, context: context, writer: session.outbound.id)
        if let refusal = outcome.refusal {
            session.outbound.send(.errorMessage(refusal))
            return
        }
        for rejection in outcome.rejections { session.outbound.send(.opRejected(rejection)) }
        let wait = timeout.map { Duration.milliseconds(Int64(max(0, min($0, 600_000)))) } ?? persistTimeout
        session.acknowledge(PendingAck(ticket: outcome.ticket, ack: .opAck(outcome.ack), timeout: wait, firstOpID: ops[0].id ?? "0"))
        let elapsed = ContinuousClock.now - started
        metrics.opBatchLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
