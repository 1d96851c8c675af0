import Tenancy
import TopGunWire

/// Distributed locks (protocol.md §6.6.7): queued requests, fencing tokens, TTLs.
public struct LockHandler: Sendable {
    let locks: LockRegistry
    let routing: ReadRouting
    let replies: ErrorReplies
    /// On a node of a cluster: locks held by other nodes.
    var cluster: ClusterCoordination?

    public init(locks: LockRegistry, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.locks = locks
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
    }

    /// A lock is held by its name's partition's owner (one holder cluster-wide).
    func request(_ request: LockRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("lock", request.name, to: out) else { return }
        let plan = routing.nameRead(request.name, tenant: context.tenant)
        if case .remote(let owners) = plan, let cluster {
            do {
                try await cluster.lockRequest(request, tenant: context.tenant, out: out, owner: owners[0])
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let refusal = ReadRouting.refusal(plan) { return replies.send(refusal, to: out) }
        cluster?.lockAsked(request.name, tenant: context.tenant, session: out.id)
        await locks.request(request, tenant: context.tenant, subscriber: out)
    }

    func release(_ release: LockRelease, context: RequestContext, out: SessionOutbound) async {
        let plan = routing.nameRead(release.name, tenant: context.tenant)
        if case .remote(let owners) = plan, let cluster {
            do {
                try await cluster.lockRelease(release, tenant: context.tenant, out: out, owner: owners[0])
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let refusal = ReadRouting.refusal(plan) { return replies.send(refusal, to: out) }
        await locks.release(release, tenant: context.tenant, subscriber: out)
    }
}
