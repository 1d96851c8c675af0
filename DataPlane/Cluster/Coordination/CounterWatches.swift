import Tenancy
import TopGunCore

/// Which counters this node's sessions watch, and on which node each watch is registered
/// (pure). A counter lives on its partition's owner; when the owner changes, the watches
/// registered on the old one are registered again on the new one (`misplaced`), so that the
/// sessions keep receiving updates without asking again.
struct CounterWatches: Sendable, Equatable {
    private var watches: [TenantScopedName: [SessionID: NodeID]] = [:]
    private var bySession: [SessionID: Set<TenantScopedName>] = [:]

    init() {}

    /// `session` watches `counter`, registered on `node`.
    mutating func record(_ counter: TenantScopedName, session: SessionID, on node: NodeID) {
        watches[counter, default: [:]][session] = node
        bySession[session, default: []].insert(counter)
    }

    mutating func remove(_ session: SessionID) {
        for counter in bySession.removeValue(forKey: session) ?? [] {
            watches[counter]?.removeValue(forKey: session)
            if watches[counter]?.isEmpty == true { watches.removeValue(forKey: counter) }
        }
    }

    /// A watch registered elsewhere than where its counter lives now.
    struct Misplaced: Sendable, Equatable {
        var counter: TenantScopedName
        var session: SessionID
        var registeredOn: NodeID
        var owner: NodeID
    }

    /// The watches whose counter's owner (by `owner`) is not the node they are registered on.
    func misplaced(owner: (TenantScopedName) -> NodeID) -> [Misplaced] {
        var found: [Misplaced] = []
        for (counter, sessions) in watches {
            let current = owner(counter)
            for (session, node) in sessions where node != current {
                found.append(Misplaced(counter: counter, session: session, registeredOn: node, owner: current))
            }
        }
        return found
    }

    var count: Int { watches.values.reduce(0) { $0 + $1.count } }
}
