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
        let (tenant, cluster) = (context.tenant, cluster)
        let remote: ((NodeID) async throws -> Void)? = cluster.map { cluster in
            { owner in try await cluster.counterRequest(request, tenant: tenant, out: out, owner: owner) }
        }
        let refusal = await NameRouting(routing: routing).serve(request.name, tenant: tenant, idempotent: true, local: {
            out.send(.counterResponse(await counters.request(request.name, tenant: tenant, subscriber: out)))
            cluster?.watchedHere(request.name, tenant: tenant, session: out.id)
        }, remote: remote)
        if let refusal { replies.send(refusal, to: out) }
    }

    /// Only a counter's owner merges it: one merged into a dropped partition would be stored as
    /// if it had no past, one merged elsewhere would diverge. A sync is a max-merge, so sending
    /// it again (through a failover) changes nothing.
    func sync(_ sync: CounterSync, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("counter", sync.name, to: out) else { return }
        let (tenant, cluster) = (context.tenant, cluster)
        let remote: ((NodeID) async throws -> Void)? = cluster.map { cluster in
            { owner in try await cluster.counterSync(sync, tenant: tenant, out: out, owner: owner) }
        }
        let refusal = await NameRouting(routing: routing).serve(sync.name, tenant: tenant, idempotent: true, local: {
            if let record = await counters.sync(sync.name, state: sync.state, tenant: tenant, subscriber: out) {
                _ = await durability.enqueue([record])
            }
            cluster?.watchedHere(sync.name, tenant: tenant, session: out.id)
        }, remote: remote)
        if let refusal { replies.send(refusal, to: out) }
    }
}
