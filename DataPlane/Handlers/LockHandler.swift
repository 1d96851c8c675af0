import Tenancy
import TopGunWire

/// Distributed locks (protocol.md §6.6.7): queued requests, fencing tokens, TTLs.
public struct LockHandler: Sendable {
    let locks: LockRegistry
    let routing: ReadRouting
    let replies: ErrorReplies

    public init(locks: LockRegistry, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.locks = locks
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
    }

    /// A lock is held by its name's partition's owner (one holder cluster-wide).
    func request(_ request: LockRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("lock", request.name, to: out) else { return }
        if let refusal = ReadRouting.refusal(routing.nameRead(request.name, tenant: context.tenant)) { return replies.send(refusal, to: out) }
        await locks.request(request, tenant: context.tenant, subscriber: out)
    }

    func release(_ release: LockRelease, context: RequestContext, out: SessionOutbound) async {
        if let refusal = ReadRouting.refusal(routing.nameRead(release.name, tenant: context.tenant)) { return replies.send(refusal, to: out) }
        await locks.release(release, tenant: context.tenant, subscriber: out)
    }
}
