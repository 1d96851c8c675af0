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
        let tenant = context.tenant
        let local = {
            cluster?.lockAsked(request.name, tenant: tenant, session: out.id)
            await locks.request(request, tenant: tenant, subscriber: out)
        }
        guard let cluster else {
            if let refusal = ReadRouting.refusal(routing.nameRead(request.name, tenant: tenant)) { return replies.send(refusal, to: out) }
            return await local()
        }
        // Asking twice is harmless: a holder asking again keeps its token, a waiter its place.
        let refusal = await NameRouting(routing: routing).serve(request.name, tenant: tenant, idempotent: true, local: local) { owner in
            try await cluster.lockRequest(request, tenant: tenant, out: out, owner: owner)
        }
        if let refusal { replies.send(refusal, to: out) }
    }

    func release(_ release: LockRelease, context: RequestContext, out: SessionOutbound) async {
        let tenant = context.tenant
        let local = { await locks.release(release, tenant: tenant, subscriber: out) }
        guard let cluster else {
            if let refusal = ReadRouting.refusal(routing.nameRead(release.name, tenant: tenant)) { return replies.send(refusal, to: out) }
            return await local()
        }
        // Releasing twice is not harmless (the second finds the lock free): sent again only
        // when the owner surely did not handle it.
        let refusal = await NameRouting(routing: routing).serve(release.name, tenant: tenant, idempotent: false, local: local) { owner in
            try await cluster.lockRelease(release, tenant: tenant, out: out, owner: owner)
        }
        if let refusal { replies.send(refusal, to: out) }
    }
}
