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

    public init() {}

    public func register(_ outbound: SessionOutbound) {
        entries.withLock { $0[outbound.id] = Entry(outbound: outbound, context: nil) }
    }

    public func authenticated(_ session: SessionID, context: RequestContext) {
        entries.withLock { $0[session]?.context = context }
    }

    public func remove(_ session: SessionID) {
        _ = entries.withLock { $0.removeValue(forKey: session) }
    }

    public var count: Int { entries.withLock { $0.count } }

    /// Who the authenticated sessions belong to (for re-checking them all after the metadata
    /// change stream was interrupted).
    public func authenticatedContexts() -> [RequestContext] {
        entries.withLock { $0.values.compactMap(\.context) }
    }

    /// Closes the matching sessions; returns how many.
    @discardableResult
    public func close(_ code: CloseCode, reason: String, where matches: (Entry) -> Bool = { _ in true }) -> Int {
        let targets = entries.withLock { $0.values.filter(matches) }
        for entry in targets { entry.outbound.close(code, reason: reason) }
        return targets.count
    }
}
