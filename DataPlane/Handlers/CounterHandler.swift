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
    /// On a node of a cluster: counters held by other nodes.
    var cluster: ClusterCoordination?

    public init(counters: CounterRegistry, durability: any DurabilityPipeline, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.counters = counters
        self.durability = durability
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
    }

    func request(_ request: CounterRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", request.name, to: out) else { return }
        let plan = routing.nameRead(request.name, tenant: context.tenant)
        if case .remote(let owners) = plan, let cluster {
            do {
                try await cluster.counterRequest(request, tenant: context.tenant, out: out, owner: owners[0])
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let refusal = ReadRouting.refusal(plan) { return replies.send(refusal, to: out) }
        out.send(.counterResponse(await counters.request(request.name, tenant: context.tenant, subscriber: out)))
        cluster?.watchedHere(request.name, tenant: context.tenant, session: out.id)
    }

    func sync(_ sync: CounterSync, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", sync.name, to: out) else { return }
        // A counter merged into a dropped partition would be stored as if it had no past, and
        // one merged away from its owner would diverge from it.
        let plan = routing.nameRead(sync.name, tenant: context.tenant)
        if case .remote(let owners) = plan, let cluster {
            do {
                try await cluster.counterSync(sync, tenant: context.tenant, out: out, owner: owners[0])
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let refusal = ReadRouting.refusal(plan) { return replies.send(refusal, to: out) }
        if let record = await counters.sync(sync.name, state: sync.state, tenant: context.tenant, subscriber: out) {
            _ = await durability.enqueue([record])
        }
        cluster?.watchedHere(sync.name, tenant: context.tenant, session: out.id)
    }
}
