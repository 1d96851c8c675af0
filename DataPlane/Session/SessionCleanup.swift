import Tenancy

/// Releases what a session leaves behind in every domain: its live queries, locks, topic
/// subscriptions, counter watches, journal subscriptions and subscription quota.
public struct SessionCleanup: Sendable {
    let topics: TopicRegistry
    let locks: LockRegistry
    let counters: CounterRegistry
    let journal: EventJournal
    let policies: TenantPolicies
    /// On a node of a cluster: tells the nodes holding something for the session.
    var cluster: ClusterCoordination?

    public init(topics: TopicRegistry, locks: LockRegistry, counters: CounterRegistry, journal: EventJournal, policies: TenantPolicies) {
        self.topics = topics
        self.locks = locks
        self.counters = counters
        self.journal = journal
        self.policies = policies
    }

    /// Releases what a closing session holds outside its maps. Safe to call more than once:
    /// a session starting to close calls it at once (its locks go to the next waiter without
    /// waiting for the close handshake), and again when its socket is gone.
    public func ending(_ session: SessionID) async {
        await topics.removeSession(session)
        await locks.removeSession(session)
        await counters.removeSession(session)
        journal.removeSession(session)
        policies.releaseSubscriptions(session: session)
        await cluster?.sessionEnded(session)
    }

    /// Forgets a session everywhere it left state, its live queries in `maps` included.
    public func closed(_ session: SessionID, maps touched: [MapStore]) async {
        for store in touched { await store.removeSession(session) }
        await ending(session)
    }
}
