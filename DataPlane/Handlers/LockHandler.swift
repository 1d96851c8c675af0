import Tenancy
import TopGunWire

/// Distributed locks (protocol.md §6.6.7): queued requests, fencing tokens, TTLs.
public struct LockHandler: Sendable {
    let locks: LockRegistry
    let replies: ErrorReplies

    public init(locks: LockRegistry, metrics: DataPlaneMetrics) {
        self.locks = locks
        self.replies = ErrorReplies(metrics: metrics)
    }

    func request(_ request: LockRequest, context: RequestContext, out: SessionOutbound) async {
        guard replies.validName("lock", request.name, to: out) else { return }
        await locks.request(request, tenant: context.tenant, subscriber: out)
    }

    func release(_ release: LockRelease, context: RequestContext, out: SessionOutbound) async {
        await locks.release(release, tenant: context.tenant, subscriber: out)
    }
}
