import TopGunWire
import Synchronization
import Tenancy

/// Every open connection of the node, with who it belongs to once authenticated: what a
/// graceful shutdown closes, and what closing a tenant's or a key's sessions will search.
public final class SessionRegistry: Sendable {
    public struct Entry: Sendable {
        public var outbound: SessionOutbound
        public var context: RequestContext?
    }

    private let entries = Mutex<[SessionID: Entry]>([:])
    /// Authenticated sessions per tenant, for the connection quota.
    private let perTenant = Mutex<[TenantID: Int64]>([:])
    private let usage: UsageMeter?

    /// - Parameter usage: counts each tenant's connections (connection-seconds, peak).
    public init(usage: UsageMeter? = nil) {
        self.usage = usage
    }

    public func register(_ outbound: SessionOutbound) {
        entries.withLock { $0[outbound.id] = Entry(outbound: outbound, context: nil) }
    }

    /// Records who the session belongs to, unless `QuotaGate.connection` refuses it (the
    /// tenant has `connectionLimit` authenticated sessions on this node already): then
    /// nothing changes and the refusal is returned (the caller closes the socket with 1013).
    @discardableResult
    public func authenticated(_ session: SessionID, context: RequestContext, connectionLimit: Int64 = .max) -> QuotaRefusal? {
        let refusal = perTenant.withLock { counts -> QuotaRefusal? in
            let open = counts[context.tenant] ?? 0
            if let refusal = QuotaGate.connection(open: open, limit: connectionLimit) { return refusal }
            counts[context.tenant] = open + 1
            return nil
        }
        if let refusal { return refusal }
        entries.withLock { $0[session]?.context = context }
        usage?.connectionOpened(context.tenant)
        return nil
    }

    public func remove(_ session: SessionID) {
        let removed = entries.withLock { $0.removeValue(forKey: session) }
        if let tenant = removed?.context?.tenant {
            if let usage, let bytes = removed?.outbound.takeBytesSent(), bytes > 0 { usage.bytesOut(tenant, bytes) }
            perTenant.withLock { counts in
                let left = (counts[tenant] ?? 1) - 1
                counts[tenant] = left > 0 ? left : nil
            }
            usage?.connectionClosed(tenant)
        }
    }

    /// Hands each authenticated session's bytes sent since the last call to the usage meter.
    public func meterBytesSent() {
        guard let usage else { return }
        let sessions = entries.withLock { $0.values.compactMap { entry in entry.context.map { ($0.tenant, entry.outbound) } } }
        for (tenant, outbound) in sessions {
            let bytes = outbound.takeBytesSent()
            if bytes > 0 { usage.bytesOut(tenant, bytes) }
        }
    }

    /// Each tenant with authenticated sessions on this node, and how many.
    public func countsByTenant() -> [TenantID: Int64] {
        perTenant.withLock { $0 }
    }

    /// Authenticated sessions of `tenant` on this node.
    public func count(of tenant: TenantID) -> Int64 {
        perTenant.withLock { $0[tenant] ?? 0 }
    }

    public var count: Int { entries.withLock { $0.count } }

    /// Who the authenticated sessions belong to (for re-checking them all after the metadata
    /// change stream was interrupted).
    public func authenticatedContexts() -> [RequestContext] {
        entries.withLock { $0.values.compactMap(\.context) }
    }

    /// The authenticated sessions whose client follows the partition map, with their context.
    public func partitionMapFollowers() -> [(SessionOutbound, RequestContext)] {
        entries.withLock { $0.values.compactMap { entry in entry.outbound.isFollowingPartitionMap ? entry.context.map { (entry.outbound, $0) } : nil } }
    }

    /// The open session with this id (pushes from another node reach it by id).
    public func outbound(_ session: SessionID) -> SessionOutbound? {
        entries.withLock { $0[session]?.outbound }
    }

    /// Closes the matching sessions; returns how many.
    @discardableResult
    public func close(_ code: CloseCode, reason: String, where matches: (Entry) -> Bool = { _ in true }) -> Int {
        let targets = entries.withLock { $0.values.filter(matches) }
        for entry in targets { entry.outbound.close(code, reason: reason) }
        return targets.count
    }
}
