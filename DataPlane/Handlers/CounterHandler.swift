import Tenancy
import TopGunCore
import TopGunWire

/// PN counters (protocol.md §6.6.8): a request subscribes and answers the state; a sync
/// merges, answers, pushes the merged state to the other watchers and stores it.
public struct CounterHandler: Sendable {
    let counters: CounterRegistry
    let durability: any DurabilityPipeline
    let unloaded: UnloadedPartitions
    let replies: ErrorReplies

    public init(counters: CounterRegistry, durability: any DurabilityPipeline, unloaded: UnloadedPartitions, metrics: DataPlaneMetrics) {
        self.counters = counters
        self.durability = durability
        self.unloaded = unloaded
        self.replies = ErrorReplies(metrics: metrics)
    }

    func request(_ request: CounterRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", request.name, to: out) else { return }
        out.send(.counterResponse(await counters.request(request.name, tenant: context.tenant, subscriber: out)))
    }

    func sync(_ sync: CounterSync, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", sync.name, to: out) else { return }
        // A counter merged into a dropped partition would be stored as if it had no past.
        let partition = PartitionFunction.partition(forKey: sync.name, tenantID: context.tenant.rawValue)
        if unloaded.contains(partition) { return replies.send(WritePath.notLoaded(partition), to: out) }
        if let record = await counters.sync(sync.name, state: sync.state, tenant: context.tenant, subscriber: out) {
            _ = await durability.enqueue([record])
        }
    }
}
