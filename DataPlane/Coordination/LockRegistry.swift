import Tenancy
import TopGunCore
import TopGunWire

/// Distributed locks of a node: performs what `LockTable` decides, and expires leases.
public actor LockRegistry {
    private var table = LockTable()
    private var subscribers: [SessionID: any Subscriber] = [:]

    public init() {}

    public func request(_ request: LockRequest, tenant: TenantID, subscriber: any Subscriber) {
        subscribers[subscriber.id] = subscriber
        let name = LockTable.LockName(tenant: tenant, name: request.name)
        perform(table.request(name, owner: .init(session: subscriber.id, requestId: request.requestId), ttlMillis: request.ttl, nowMillis: Self.now()))
    }

    public func release(_ release: LockRelease, tenant: TenantID, subscriber: any Subscriber) {
        subscribers[subscriber.id] = subscriber
        let name = LockTable.LockName(tenant: tenant, name: release.name)
        perform(table.release(name, session: subscriber.id, requestId: release.requestId ?? "", fencingToken: release.fencingToken, nowMillis: Self.now()))
    }

    /// Drops a deleted tenant's locks, holders and waiters alike (its sessions are closed).
    public func removeTenant(_ tenant: TenantID) {
        table.removeTenant(tenant)
    }

    public func removeSession(_ session: SessionID) {
        subscribers.removeValue(forKey: session)
        perform(table.removeSession(session, nowMillis: Self.now()))
    }

    /// Checks leases every `interval` until cancelled.
    public func runExpiry(interval: Duration = .milliseconds(250)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            perform(table.expire(nowMillis: Self.now()))
        }
    }

    private func perform(_ actions: [LockTable.Action]) {
        for action in actions {
            switch action {
            case .granted(let name, let owner, let token):
                subscribers[owner.session]?.send(.lockGranted(LockGranted(requestId: owner.requestId, name: name.name, fencingToken: token)))
            case .released(let name, let session, let requestId, let success):
                subscribers[session]?.send(.lockReleased(LockReleased(requestId: requestId, name: name.name, success: success)))
            case .unknownLock(let name, let session, let requestId):
                let subscriber = subscribers[session]
                subscriber?.send(.errorMessage(.make(.notFound, "lock '\(name.name)' is not held", details: ["name": .string(name.name)])))
                subscriber?.send(.lockReleased(LockReleased(requestId: requestId, name: name.name, success: false)))
            }
        }
    }

    static func now() -> Int64 { SystemClock().nowMillis() }
}
