import Synchronization
import Tenancy

/// One hybrid logical clock per tenant. A tenant's timestamps only ever move its own clock:
/// with one clock per node, a tenant writing far in the future dragged every other tenant's
/// `serverHlc` and sync timestamps along with it.
public final class TenantClocks: Sendable {
    public let nodeId: String
    private let clocks = Mutex<[TenantID: NodeClock]>([:])

    public init(nodeId: String) {
        self.nodeId = nodeId
    }

    /// The clock of `tenant` (made on first use).
    public func clock(for tenant: TenantID) -> NodeClock {
        clocks.withLock { clocks in
            if let clock = clocks[tenant] { return clock }
            let clock = NodeClock(nodeId: nodeId)
            clocks[tenant] = clock
            return clock
        }
    }

    /// Forgets a deleted tenant's clock.
    public func remove(_ tenant: TenantID) {
        _ = clocks.withLock { $0.removeValue(forKey: tenant) }
    }
}
