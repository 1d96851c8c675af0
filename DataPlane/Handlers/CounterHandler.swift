import Tenancy
import TopGunCore
import TopGunWire

/// PN counters (protocol.md §6.6.8): a request subscribes and answers the state; a sync
/// merges, answers, pushes the merged state to the other watchers and stores it.
public struct CounterHandler: Sendable {
    let counters: CounterRegistry
    let durability: any DurabilityPipeline
    let routing: ReadRouting
    let replies: ErrorReplies

    public init(counters: CounterRegistry, durability: any DurabilityPipeline, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.counters = counters
        self.durability = durability
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
    }

    func request(_ request: CounterRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", request.name, to: out) else { return }
        if let refusal = ReadRouting.refusal(routing.nameRead(request.name, tenant: context.tenant)) { return replies.send(refusal, to: out) }
        out.send(.counterResponse(await counters.request(request.name, tenant: context.tenant, subscriber: out)))
    }

    func sync(_ sync: CounterSync, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", sync.name, to: out) else { return }
        // A counter merged into a dropped partition would be stored as if it had no past, and
        // one merged away from its owner would diverge from it.
        if let refusal = ReadRouting.refusal(routing.nameRead(sync.name, tenant: context.tenant)) { return replies.send(refusal, to: out) }
        if let record = await counters.sync(sync.name, state: sync.state, tenant: context.tenant, subscriber: out) {
            _ = await durability.enqueue([record])
        }
    }
}
