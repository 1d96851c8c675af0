import Tenancy
import TopGunCore
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

    /// A lock is held by its name's partition's owner (one holder cluster-wide). Asking twice
    /// is harmless: a holder asking again keeps its token, a waiter its place.
    func request(_ request: LockRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("lock", request.name, to: out) else { return }
        let (tenant, cluster) = (context.tenant, cluster)
        let remote: ((NodeID) async throws -> Void)? = cluster.map { cluster in
            { owner in try await cluster.lockRequest(request, tenant: tenant, out: out, owner: owner) }
        }
        let refusal = await NameRouting(routing: routing).serve(request.name, tenant: tenant, idempotent: true, local: {
            cluster?.lockAsked(request.name, tenant: tenant, session: out.id)
            await locks.request(request, tenant: tenant, subscriber: out)
        }, remote: remote)
        if let refusal { replies.send(refusal, to: out) }
    }

    /// Releasing twice is not harmless (the second finds the lock free): sent again only when
    /// the owner surely did not handle it.
    func release(_ release: LockRelease, context: RequestContext, out: SessionOutbound) async {
        let (tenant, cluster) = (context.tenant, cluster)
        let remote: ((NodeID) async throws -> Void)? = cluster.map { cluster in
            { owner in try await cluster.lockRelease(release, tenant: tenant, out: out, owner: owner) }
        }
        let refusal = await NameRouting(routing: routing).serve(release.name, tenant: tenant, idempotent: false, local: {
            await locks.release(release, tenant: tenant, subscriber: out)
        }, remote: remote)
        if let refusal { replies.send(refusal, to: out) }
    }
}
