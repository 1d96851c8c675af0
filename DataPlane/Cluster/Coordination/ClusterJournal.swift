import Logging
import Tenancy
import TopGunCore
import TopGunWire

/// The event journal across the nodes of a cluster (protocol.md §6.6.11): each tenant's events
/// are numbered by one node, its *sequencer*, the owner of the tenant's journal partition
/// (`partition(of:)`); every other node ships the events of the writes it applies there, on
/// its ordered stream. Reads and subscriptions of this node's clients go to the sequencer, so
/// they see the whole cluster's events in one order.
///
/// Numbers only increase per tenant, whichever node numbers them: a sequencer numbers from
/// above `floor(epoch:)` of the journal partition's epoch, which grows by one at each change
/// of owner (the fencing tokens' rule, `LockTable.fencingFloor`); a node on its own numbers
/// 1, 2, 3…. When the sequencer changes, this node subscribes its clients again on the new
/// one from the number after the last event each received, and passes on only events
/// numbered above it (no event twice). The journal lives in memory: events the previous
/// sequencer held are not moved, and events shipped to a sequencer while it was being
/// replaced may be lost (README).
actor ClusterJournal {
    struct Link: Sendable {
        /// Subscribes `feed` on `owner` (the sequencer); events come on its stream.
        var register: @Sendable (_ owner: NodeID, _ feed: UInt64, _ tenant: TenantID, _ request: JournalSubscribe) async throws -> Void
        /// Ends feeds on `owner` (no answer awaited).
        var release: @Sendable (_ owner: NodeID, _ feeds: [UInt64]) -> Void
        /// The tenant's sequencer now.
        var sequencer: @Sendable (_ tenant: TenantID) -> NodeID
        /// `session` relies on `owner`.
        var relyOn: @Sendable (_ session: SessionID, _ owner: NodeID) -> Void
    }

    /// The key whose partition holds a tenant's journal: its owner numbers the tenant's events.
    static let journalKey = "\u{0}journal"

    static func partition(of tenant: TenantID) -> Int {
        PartitionFunction.partition(forKey: journalKey, tenantID: tenant.rawValue)
    }

    /// Numbers a sequencer gives under the journal partition's `epoch` are above this.
    static func floor(epoch: Int64) -> UInt64 {
        UInt64(LockTable.fencingFloor(epoch: epoch))
    }

    private struct Key: Hashable {
        var session: SessionID
        var subscriptionId: String
    }

    private struct Subscription {
        var out: SessionOutbound
        var tenant: TenantID
        var request: JournalSubscribe
        /// The feed on the sequencer, and the sequencer.
        var feed: UInt64?
        var owner: NodeID?
        /// A registration under way (its feed).
        var registering: UInt64?
        var lastSequence: UInt64?
    }

    private let link: Link
    private let logger: Logger
    private var subscriptions: [Key: Subscription] = [:]
    private var feeds: [UInt64: Key] = [:]

    init(link: Link, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// Returns once the subscription is in place on the sequencer (or its placement failed and
    /// is retried), so that the client's next writes find it there, as on a single node.
    func subscribe(_ request: JournalSubscribe, tenant: TenantID, out: SessionOutbound) async {
        let key = Key(session: out.id, subscriptionId: request.requestId)
        release(key)
        subscriptions[key] = Subscription(out: out, tenant: tenant, request: request)
        guard let (feed, sequencer, request) = startPlacing(key) else { return }
        do {
            try await link.register(sequencer, feed, tenant, request)
            registered(feed, on: sequencer)
        } catch {
            registrationFailed(feed, on: sequencer, error: error)
        }
    }

    func unsubscribe(session: SessionID, subscriptionId: String) {
        release(Key(session: session, subscriptionId: subscriptionId))
    }

    func sessionEnded(_ session: SessionID) {
        for key in subscriptions.keys where key.session == session { release(key) }
    }

    private func release(_ key: Key) {
        guard let subscription = subscriptions.removeValue(forKey: key) else { return }
        for feed in [subscription.feed, subscription.registering].compactMap({ $0 }) {
            feeds[feed] = nil
            if let owner = subscription.owner { link.release(owner, [feed]) }
        }
    }

    /// The table changed, or a registration failed: every subscription whose sequencer is
    /// another node now subscribes there.
    func tableChanged() {
        for key in subscriptions.keys { place(key) }
    }

    /// A new feed for `key` on its sequencer, when it has none there and none on its way.
    private func startPlacing(_ key: Key) -> (feed: UInt64, sequencer: NodeID, request: JournalSubscribe)? {
        guard let subscription = subscriptions[key], subscription.registering == nil else { return nil }
        let sequencer = link.sequencer(subscription.tenant)
        guard subscription.feed == nil || subscription.owner != sequencer else { return nil }
        let feed = SessionID.next().rawValue
        subscriptions[key]?.registering = feed
        feeds[feed] = key
        link.relyOn(key.session, sequencer)
        var request = subscription.request
        if let last = subscription.lastSequence { request.fromSequence = String(last + 1) }
        return (feed, sequencer, request)
    }

    private func place(_ key: Key) {
        guard let (feed, sequencer, request) = startPlacing(key), let tenant = subscriptions[key]?.tenant else { return }
        let link = self.link
        Task {
            do {
                try await link.register(sequencer, feed, tenant, request)
                self.registered(feed, on: sequencer)
            } catch {
                self.registrationFailed(feed, on: sequencer, error: error)
            }
        }
    }

    private func registered(_ feed: UInt64, on owner: NodeID) {
        guard let key = feeds[feed], var subscription = subscriptions[key], subscription.registering == feed else {
            return link.release(owner, [feed])
        }
        if let old = subscription.feed, let oldOwner = subscription.owner {
            feeds[old] = nil
            link.release(oldOwner, [old])
        }
        subscription.feed = feed
        subscription.owner = owner
        subscription.registering = nil
        subscriptions[key] = subscription
        // The table may have moved on while this registration was on its way.
        place(key)
    }

    private func registrationFailed(_ feed: UInt64, on owner: NodeID, error: any Error) {
        logger.debug("journal subscription not placed yet", metadata: ["sequencer": "\(owner)", "error": "\(error)"])
        link.release(owner, [feed])
        guard let key = feeds.removeValue(forKey: feed), subscriptions[key]?.registering == feed else { return }
        subscriptions[key]?.registering = nil
    }

    /// Places the subscriptions still without a feed on their sequencer (after failures).
    func retry() {
        for (key, subscription) in subscriptions where subscription.registering == nil && subscription.owner != link.sequencer(subscription.tenant) {
            place(key)
        }
    }

    /// Which of `ids` are feeds this node still uses (a sequencer asks after a lost push).
    func liveFeeds(among ids: [UInt64]) -> Set<UInt64> {
        Set(ids.filter { feeds[$0] != nil })
    }

    /// An event a sequencer pushed for `feed` (ignored when `feed` is not a journal feed).
    func receive(feed: UInt64, message: TopGunMessage, frame bytes: [UInt8]) {
        guard let key = feeds[feed] else { return }
        guard case .journalEventMessage(let pushed) = message, var subscription = subscriptions[key] else { return }
        // Numbers only increase, across sequencers too: anything at or below the last one
        // passed on was passed on already (a replay of the new sequencer, a late event of the
        // old one).
        let sequence = UInt64(pushed.event.sequence) ?? 0
        if let last = subscription.lastSequence, sequence <= last { return }
        subscription.lastSequence = sequence
        subscriptions[key] = subscription
        subscription.out.send(encoded: bytes)
    }
}
