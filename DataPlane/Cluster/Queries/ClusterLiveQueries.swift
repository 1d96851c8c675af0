import Logging
import NIOCore
import Tenancy
import TopGunCore
import TopGunWire

/// Live queries of this node's clients over maps whose partitions lie on several nodes: the
/// client's node coordinates, each partition's owner computes.
///
/// For a subscription, each node owning partitions the query needs (every partition, or only
/// those of the keys the query pins, `Query.exactKeys`) runs the query over exactly those
/// partitions, as a live query of its own (a *feed*: the query without projection, under its
/// `limit` and sort); its `QUERY_RESP`, `QUERY_UPDATE`s and `SERVER_EVENT`s come back on its
/// ordered stream. This node keeps every row the feeds sent (U) and a window over U under the
/// query, which decides what the client sees. With a limit N, each owner sends its own top N:
/// a row among the global top N has fewer than N rows above it on its owner too, so the top N
/// of U is the global top N, and the window's own ENTER, UPDATE and LEAVE (displacement,
/// promotion) are exactly those a single node would send. Without a limit, U is every match.
///
/// When the table changes (a move, a failover), the subscription's arrangement (which node
/// serves which partitions) is recomputed; feeds whose owner and partitions are unchanged stay,
/// new ones are registered, and once all of them answered this node swaps them in, computes
/// the result afresh and sends the client the difference from what it holds
/// (`QueryChange.diff`): its result then equals a fresh `QUERY_SUB`'s, with nothing lost or
/// sent twice. Until then the old feeds keep serving. An owner that cannot take a feed (it is
/// unreachable, or the partition is still loading) is asked again every `retryInterval`; a
/// first answer that waits longer than `unavailableAfter` is preceded by one `ERROR 503`.
///
/// `SERVER_EVENT`s: each session gets a map's events from one feed per owner (its live
/// queries on that map share them), as a single node sends them once per session. Events of
/// the short while a moved partition's new feed is not swapped in yet are not sent (the
/// client's next sync brings their records); results stay exact.
actor ClusterLiveQueries {
    /// How this node reaches the owners (the cluster's transport in production, fakes in tests).
    struct Link: Sendable {
        /// Registers `feed` on `owner`: the owner runs `sub` over `partitions` and answers on its
        /// stream, ending its first answer with `feedReady`. Throws when it cannot.
        var register: @Sendable (_ owner: NodeID, _ feed: UInt64, _ tenant: TenantID, _ sub: QuerySub, _ partitions: [Int]) async throws -> Void
        /// Ends feeds on `owner` (no answer awaited).
        var release: @Sendable (_ owner: NodeID, _ feeds: [UInt64]) -> Void
        /// Which node owns each of `partitions` now.
        var owners: @Sendable (_ partitions: [Int]) -> [NodeID: [Int]]
        /// `session` relies on `owner` (its pushes, its end).
        var relyOn: @Sendable (_ session: SessionID, _ owner: NodeID) -> Void
    }

    struct Key: Hashable, Sendable {
        var session: SessionID
        var queryId: String
    }

    private struct Feed {
        var owner: NodeID
        var partitions: [Int]
        /// The rows it sent, by key (keys compare byte for byte, as the client's do).
        var rows: [HashedKey: QueryRecord] = [:]
        var ready = false
        /// Its registration failed: it is never swapped in (the next arrangement replaces it).
        var failed = false
        /// Whether the owner had more matching rows than it sent (its `QUERY_RESP`).
        var hasMore = false
    }

    private struct Subscription {
        var out: SessionOutbound
        var tenant: TenantID
        var sub: QuerySub
        var partitions: [Int]
        /// The feeds whose rows make the result.
        var active: [UInt64: Feed] = [:]
        /// Feeds of the next arrangement, swapped in once all of them answered.
        var pending: [UInt64: Feed] = [:]
        /// Feeds kept from the active ones in the next arrangement.
        var kept: Set<UInt64> = []
        /// A next arrangement (`pending` and `kept`) waits to be swapped in.
        var arranging = false
        /// Owner → partitions of the arrangement being built or served.
        var arrangement: [NodeID: [Int]] = [:]
        var window: LiveQueryWindow?
        /// The most bytes of results the first `QUERY_RESP` carries.
        var pageBytes: Int
        var needsArranging = true
        var waitingSince: ContinuousClock.Instant = .now
        var toldUnavailable = false
    }

    static let retryInterval: Duration = .milliseconds(500)
    static let unavailableAfter: Duration = .seconds(5)

    private let link: Link
    private let logger: Logger
    /// What this node's sessions wrote to the maps they query: their own writes' events are
    /// not sent back to them.
    nonisolated let ownWrites = OwnWrites()
    private var subscriptions: [Key: Subscription] = [:]
    private var feeds: [UInt64: Key] = [:]
    private var keysBySession: [SessionID: Set<Key>] = [:]

    init(link: Link, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// How many client subscriptions this node coordinates.
    var count: Int { subscriptions.count }

    /// Which of `ids` are feeds this node still uses (an owner asks after a lost push).
    func liveFeeds(among ids: [UInt64]) -> Set<UInt64> {
        Set(ids.filter { feeds[$0] != nil })
    }

    // MARK: Client

    /// `QUERY_SUB` (live, no cursor, not grouped): its `QUERY_RESP` follows once every owner
    /// answered.
    func subscribe(_ sub: QuerySub, tenant: TenantID, out: SessionOutbound, pageBytes: Int) {
        let key = Key(session: out.id, queryId: sub.queryId)
        release(key)
        let partitions: [Int]
        if let keys = sub.query.exactKeys {
            partitions = Set(keys.map { PartitionFunction.partition(forKey: $0, tenantID: tenant.rawValue) }).sorted()
        } else {
            partitions = Array(0..<PartitionFunction.partitionCount)
        }
        subscriptions[key] = Subscription(out: out, tenant: tenant, sub: sub, partitions: partitions, pageBytes: pageBytes)
        keysBySession[out.id, default: []].insert(key)
        ownWrites.watch(out.id, map: sub.mapName)
        arrange(key)
    }

    func unsubscribe(session: SessionID, queryId: String) {
        let key = Key(session: session, queryId: queryId)
        release(key)
        keysBySession[session]?.remove(key)
    }

    func sessionEnded(_ session: SessionID) {
        for key in keysBySession.removeValue(forKey: session) ?? [] { release(key) }
        ownWrites.sessionEnded(session)
    }

    private func release(_ key: Key) {
        guard let subscription = subscriptions.removeValue(forKey: key) else { return }
        ownWrites.unwatch(key.session, map: subscription.sub.mapName)
        var byOwner: [NodeID: [UInt64]] = [:]
        for (id, feed) in subscription.active.merging(subscription.pending, uniquingKeysWith: { a, _ in a }) {
            feeds[id] = nil
            byOwner[feed.owner, default: []].append(id)
        }
        for (owner, ids) in byOwner { link.release(owner, ids) }
    }

    // MARK: Arrangement

    /// The table changed: every subscription checks who serves its partitions now.
    func tableChanged() {
        for key in subscriptions.keys { subscriptions[key]?.needsArranging = true }
        retry()
    }

    /// Arranges the subscriptions that need it (after a failed registration, or a table change).
    func retry() {
        for (key, subscription) in subscriptions where subscription.needsArranging { arrange(key) }
        let now = ContinuousClock.now
        for (key, subscription) in subscriptions
        where subscription.window == nil && !subscription.toldUnavailable && now - subscription.waitingSince > Self.unavailableAfter {
            subscriptions[key]?.toldUnavailable = true
            let waitingOn = subscription.pending.values.first { !$0.ready }?.owner ?? subscription.arrangement.keys.sorted().first
            if let waitingOn { subscription.out.send(.errorMessage(.partitionOwnerUnreachable(waitingOn))) }
        }
    }

    private func arrange(_ key: Key) {
        guard var subscription = subscriptions[key] else { return }
        subscription.needsArranging = false
        let plan = link.owners(subscription.partitions)
        guard plan != subscription.arrangement || (subscription.window == nil && subscription.pending.isEmpty) else {
            subscriptions[key] = subscription
            return
        }
        // A new arrangement replaces any being built.
        var stale: [NodeID: [UInt64]] = [:]
        for (id, feed) in subscription.pending {
            feeds[id] = nil
            stale[feed.owner, default: []].append(id)
        }
        for (owner, ids) in stale { link.release(owner, ids) }
        subscription.pending = [:]
        subscription.arrangement = plan
        subscription.kept = []
        subscription.arranging = true
        var registrations: [(UInt64, NodeID, [Int])] = []
        for (owner, partitions) in plan {
            if let (id, _) = subscription.active.first(where: { $0.value.owner == owner && $0.value.partitions == partitions }) {
                subscription.kept.insert(id)
                continue
            }
            let id = SessionID.next().rawValue
            subscription.pending[id] = Feed(owner: owner, partitions: partitions)
            feeds[id] = key
            registrations.append((id, owner, partitions))
            link.relyOn(key.session, owner)
        }
        var ownerSub = subscription.sub
        ownerSub.fields = nil
        // One id for every feed (the stream entry names the feed): an owner's update of a
        // written key is then the same frame for all feeds, sent once per node.
        ownerSub.queryId = "feed"
        subscriptions[key] = subscription
        if registrations.isEmpty {
            swapIfReady(key)
            return
        }
        for (id, owner, partitions) in registrations {
            let (link, tenant, sub) = (self.link, subscription.tenant, ownerSub)
            Task {
                do {
                    try await link.register(owner, id, tenant, sub, partitions)
                } catch {
                    self.registrationFailed(id, owner: owner, error: error)
                }
            }
        }
    }

    private func registrationFailed(_ feed: UInt64, owner: NodeID, error: any Error) {
        logger.debug("live query feed not registered yet", metadata: ["owner": "\(owner)", "error": "\(error)"])
        link.release(owner, [feed])
        guard let key = feeds[feed], subscriptions[key]?.pending[feed] != nil else { return }
        // The owner may still finish and say it is ready: the feed is released there, so it
        // must never be swapped in. Asked again at the next retry, with the table then.
        subscriptions[key]?.pending[feed]?.failed = true
        subscriptions[key]?.arrangement = [:]
        subscriptions[key]?.needsArranging = true
    }

    // MARK: Feeds

    /// A message an owner pushed for `feeds` (one entry of its stream names every feed of this
    /// node it is for: an update of a written key is the same for all of them).
    struct Delivery: Sendable {
        var feeds: [UInt64]
        var message: TopGunMessage
        var frame: [UInt8]
    }

    /// Messages owners pushed, in order (consecutive entries of one stream message). Each
    /// client session is written once for all of them: its `SERVER_EVENT` and `QUERY_UPDATE`s
    /// of one write go out in one system call.
    func receive(_ deliveries: [Delivery]) {
        var batch = FanOutBatch(holdingDrains: true)
        defer { batch.flush() }
        for delivery in deliveries { receive(feeds: delivery.feeds, message: delivery.message, frame: delivery.frame, batch: &batch) }
    }

    private func receive(feeds ids: [UInt64], message: TopGunMessage, frame bytes: [UInt8], batch: inout FanOutBatch) {
        switch message {
        case .queryResp(let response):
            for id in ids {
                withSubscription(of: id) { subscription in
                    update(&subscription, feed: id) { feed in
                        feed.rows = [:]
                        for item in response.results { feed.rows[HashedKey(item.key)] = QueryRecord(key: item.key, value: item.value) }
                        feed.hasMore = response.hasMore ?? false
                    }
                }
            }
        case .queryUpdate(let update):
            let value: DataValue? = update.changeType == .leave ? nil : update.value
            let row = value.map { QueryRecord(key: update.key, value: $0) }
            let hashedKey = HashedKey(update.key)
            var updates = QueryUpdateFanOut(writtenKey: update.key)
            for id in ids {
                // Changed in place through the values view (a closure cannot hold `batch`).
                guard let key = feeds[id], let index = subscriptions.index(forKey: key) else { continue }
                let isActive = subscriptions.values[index].active[id] != nil
                if isActive {
                    subscriptions.values[index].active[id]!.rows[hashedKey] = row
                } else if subscriptions.values[index].pending[id] != nil {
                    subscriptions.values[index].pending[id]!.rows[hashedKey] = row
                }
                guard isActive, subscriptions.values[index].window != nil else { continue }
                let changes = subscriptions.values[index].window!.apply(key: update.key, value: value)
                guard !changes.isEmpty else { continue }
                let subscription = subscriptions.values[index]
                for change in changes {
                    updates.send(change, queryId: subscription.sub.queryId, fields: subscription.sub.fields, to: subscription.out, in: &batch)
                }
            }
        case .serverEvent, .serverBatchEvent:
            let frame = SessionOutbound.frameBuffer(bytes)
            // Owners send single events (`MapStore.broadcast`): one write, one writer.
            var own: OwnWrites.Fingerprint?
            if ownWrites.hasNotes, case .serverEvent(let event) = message { own = OwnWrites.Fingerprint(event.payload) }
            for id in ids {
                // Read in place through the values view: a copy of the subscription per feed
                // and write retains every part of it.
                guard let key = feeds[id], let index = subscriptions.index(forKey: key),
                    let owner = subscriptions.values[index].active[id]?.owner, carries(id, of: key, owner: owner)
                else { continue }
                if let own, ownWrites.isOwn(own, by: key.session) { continue }
                subscriptions.values[index].out.send(frame: frame, in: &batch)
            }
        default:
            break
        }
    }

    /// Runs `body` on the subscription `feed` belongs to, taken out and put back: changed in
    /// place, its rows and window are not copied (a copy per update cost as much as the
    /// result is large).
    private func withSubscription(of feed: UInt64, _ body: (inout Subscription) -> Void) {
        guard let key = feeds[feed], var subscription = subscriptions.removeValue(forKey: key) else { return }
        body(&subscription)
        subscriptions[key] = subscription
    }

    /// The owner finished its first answer for `feed`.
    func feedReady(_ id: UInt64) {
        guard let key = feeds[id], subscriptions[key]?.pending[id]?.failed == false else { return }
        subscriptions[key]?.pending[id]?.ready = true
        swapIfReady(key)
    }

    private func update(_ subscription: inout Subscription, feed id: UInt64, _ body: (inout Feed) -> Void) {
        if subscription.active[id] != nil {
            body(&subscription.active[id]!)
        } else if subscription.pending[id] != nil {
            body(&subscription.pending[id]!)
        }
    }

    /// Whether `feed` is the one that brings its session the events of its map from `owner`:
    /// the lowest active feed of the session's live queries on that map and owner.
    private func carries(_ feed: UInt64, of key: Key, owner: NodeID) -> Bool {
        guard let siblings = keysBySession[key.session], siblings.count > 1, let index = subscriptions.index(forKey: key) else { return true }
        let (tenant, map) = (subscriptions.values[index].tenant, subscriptions.values[index].sub.mapName)
        for other in siblings where other != key {
            guard let sibling = subscriptions.index(forKey: other), subscriptions.values[sibling].tenant == tenant,
                subscriptions.values[sibling].sub.mapName == map,
                subscriptions.values[sibling].active.contains(where: { $0.key < feed && $0.value.owner == owner })
            else { continue }
            return false
        }
        return true
    }

    private func swapIfReady(_ key: Key) {
        guard var subscription = subscriptions[key], subscription.arranging, subscription.pending.values.allSatisfy({ $0.ready && !$0.failed }),
            subscription.window?.isDeliveringPages != true
        else { return }
        subscription.arranging = false
        var retired: [NodeID: [UInt64]] = [:]
        for (id, feed) in subscription.active where !subscription.kept.contains(id) {
            feeds[id] = nil
            retired[feed.owner, default: []].append(id)
        }
        subscription.active = subscription.active.filter { subscription.kept.contains($0.key) }.merging(subscription.pending) { a, _ in a }
        subscription.pending = [:]
        subscription.kept = []
        var rows: [(key: String, value: DataValue)] = []
        for feed in subscription.active.values {
            for record in feed.rows.values { rows.append((record.key, record.value)) }
        }
        var window = LiveQueryWindow(query: subscription.sub.query, records: rows, maxResults: .max, keepsValues: true)
        if let old = subscription.window {
            send(QueryChange.diff(from: old.visibleRecords, to: window.visibleRecords), of: subscription)
        } else {
            answer(key, subscription, window: &window)
        }
        subscription.window = window
        subscriptions[key] = subscription
        for (owner, ids) in retired { link.release(owner, ids) }
    }

    /// The first `QUERY_RESP` (cut to the page size); the rest of the result follows as
    /// `ENTER`s, a page at a time as the client reads (`deliverPages`), as a single node's does.
    private func answer(_ key: Key, _ subscription: Subscription, window: inout LiveQueryWindow) {
        let fields = subscription.sub.fields
        let first = window.firstPage(maxBytes: subscription.pageBytes, cost: Self.cost(fields: fields))
        var continuation = window.continuation(nowMillis: SystemClock().nowMillis())
        if subscription.active.values.contains(where: \.hasMore) { continuation.hasMore = true }
        subscription.out.send(.queryResp(QueryResp(
            queryId: subscription.sub.queryId, results: first.map { Self.item($0, fields: fields) }, nextCursor: continuation.nextCursor,
            hasMore: continuation.hasMore, cursorStatus: nil)))
        if window.isDeliveringPages {
            let out = subscription.out
            Task { await self.deliverPages(key, to: out) }
        }
    }

    /// Sends the rest of a first result page by page, waiting for the client to read each.
    /// Meanwhile the window reports changes only of rows already sent (`LiveQueryWindow`), and
    /// a new arrangement waits for the end (its difference is computed from a whole result).
    private func deliverPages(_ key: Key, to out: SessionOutbound) async {
        while true {
            guard subscriptions[key]?.window?.isDeliveringPages == true, var subscription = subscriptions.removeValue(forKey: key) else { break }
            let fields = subscription.sub.fields
            let page = subscription.window!.nextPage(maxBytes: subscription.pageBytes, cost: Self.cost(fields: fields))
            subscriptions[key] = subscription
            for record in page {
                let item = Self.item(record, fields: fields)
                out.send(.queryUpdate(QueryUpdate(queryId: subscription.sub.queryId, key: item.key, value: item.value, changeType: .enter)))
            }
            guard subscription.window?.isDeliveringPages == true, await out.waitForRoom() else { break }
        }
        swapIfReady(key)
    }

    private static func cost(fields: [String]?) -> (QueryRecord) -> Int {
        { record in
            let value = fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value
            return 12 + MessagePackWriter.stringSize(record.key) + MessagePackWriter.encodedSize(of: value)
        }
    }

    private func send(_ changes: [QueryChange], of subscription: Subscription) {
        for change in changes {
            subscription.out.send(.queryUpdate(QueryUpdate(queryId: subscription.sub.queryId, change: change, fields: subscription.sub.fields)))
        }
    }

    private static func item(_ record: QueryRecord, fields: [String]?) -> QueryResultItem {
        QueryResultItem(key: record.key, value: fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value)
    }
}
