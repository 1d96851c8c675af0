import Logging
import ServiceLifecycle
import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// Topics, PN counters and locks across the nodes of a cluster.
///
/// The node a client is connected to (the *client's node*) serves the client; the owner of a
/// counter's or lock's partition holds it. A request for a name owned elsewhere goes to the
/// owner as a cluster request; the owner keeps the client's session as a `RemoteSubscriber`
/// and pushes to it (`LOCK_GRANTED`, `COUNTER_UPDATE`) on its `PeerStream` to the client's
/// node, in order. A topic has no owner: a message published here reaches this node's
/// subscribers and is pushed once to every other member of the table, for theirs.
///
/// What the owner holds for a session is released when the client's node says the session
/// ended (`sessionsEnded` on the stream), when the client's node is gone (its lease), or when
/// the client's node no longer vouches for it after a lost push (`sessions.alive`). Counter
/// watches follow their counter: when a counter's partition changes owner, the client's node
/// registers its sessions' watches on the new owner and sends each the current state.
///
/// Locks live in memory on their owner, which copies every change of a partition's locks to
/// the other nodes (`LockCopy` requests), and tells a waiter it holds a lock only once they
/// have the copy. The node that takes the partition over
/// (a move, or a failover) restores them: holders keep their tokens, waiters their places,
/// and its own tokens start above the new epoch's floor (`LockTable.fencingFloor`), so
/// fencing tokens keep increasing across owners even when a change was lost with the old owner.
final class ClusterCoordination: Service, LockReplication, Sendable {
    /// This node's parts, set once they exist (`attach`).
    struct Locals: Sendable {
        var sessions: SessionRegistry
        var maps: MapDirectory
        var topics: TopicRegistry
        var locks: LockRegistry
        var counters: CounterRegistry
        var journal: EventJournal
        var durability: any DurabilityPipeline
        var routing: ReadRouting
        var cleanup: SessionCleanup
    }

    enum MessageType {
        /// `COUNTER_REQUEST` of a session of the sender: `{t, i, s, m}` → `{m: COUNTER_RESPONSE}`.
        static let counterRequest = "counter.request"
        /// `COUNTER_SYNC` of a session of the sender: `{t, i, s, m}` → `{}`.
        static let counterSync = "counter.sync"
        /// `LOCK_REQUEST`: `{t, i, s, m}` → `{}`; the grant comes on the stream.
        static let lockRequest = "lock.request"
        /// `LOCK_RELEASE`: `{t, i, s, m}` → `{}`; the answer comes on the stream.
        static let lockRelease = "lock.release"
        /// An owner's locks of a partition, for the node that may take it over: `LockCopy` → `{}` once kept.
        static let lockCopy = "lock.copy"
        /// Which of these sessions of the receiver's run `i` are open: `{i, s}` → `{s}`.
        static let sessionsAlive = "sessions.alive"
        /// A live query's feed (`ClusterLiveQueries`): `{t, i, s: feed, m: QUERY_SUB, p: partitions}`
        /// → `{}`; the answer comes on the stream, ended by `feedReady`.
        static let queryRegister = "query.register"
        /// `JOURNAL_SUBSCRIBE` on the tenant's sequencer: `{t, i, s: feed, m}` → `{}`; events come on the stream.
        static let journalSubscribe = "journal.subscribe"
        /// `JOURNAL_READ` on the tenant's sequencer: `{t, i, s, m}` → `{m: JOURNAL_READ_RESPONSE}`.
        static let journalRead = "journal.read"
    }

    /// The rows of a feed's first answer sent per stream entry.
    static let feedPageBytes = 256 * 1024

    let localNode: NodeID
    private let incarnation: SynchronizedBox<String>
    private let transport: ClusterTransport
    let streams: PeerStreams
    let remoteSessions: RemoteSessions
    let footprint: SessionFootprint
    let inbox: ClusterStreamInbox
    /// Live queries of this node's clients over partitions of several nodes.
    let liveQueries: ClusterLiveQueries
    /// Journal subscriptions of this node's clients, on their tenant's sequencer.
    let journal: ClusterJournal
    /// The map each feed of another node's live query runs in (to end it).
    private let feedStores = Mutex<[SessionID: MapStore]>([:])
    /// Locks this node keeps of other nodes' partitions.
    let lockCopies = LockCopies()
    /// The version of this run's next lock copy: from the wall clock, so that a later run
    /// of this node, owning the partition again under the same epoch, still counts upwards.
    private let lockCopyVersion = Atomic<Int64>(SystemClock().nowMillis() * 1_000)
    /// How long a grant waits for a node's answer to its lock's copy.
    static let lockCopyPatience = Duration.seconds(2)
    private let table: CurrentPartitionTable
    private let leases: SynchronizedBox<MembershipView>
    private let heartbeat: Duration
    private let timeout: Duration
    private let locals = SynchronizedBox<Locals?>(nil)
    private let watches = Mutex(CounterWatches())
    /// The locks each session of this node asked for: the footprint follows their owners.
    private let lockNames = Mutex<[SessionID: Set<TenantScopedName>]>([:])
    private let logger: Logger

    init(
        localNode: NodeID, incarnation: SynchronizedBox<String>, transport: ClusterTransport, table: CurrentPartitionTable,
        leases: SynchronizedBox<MembershipView>, heartbeat: Duration, timeout: Duration = .seconds(5), metrics: ClusterMetrics? = nil,
        logger: Logger
    ) {
        self.localNode = localNode
        self.incarnation = incarnation
        self.transport = transport
        self.table = table
        self.leases = leases
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.logger = logger
        let streams = PeerStreams(transport: transport, overflows: metrics?.streamOverflows, logger: logger)
        self.streams = streams
        let remoteSessions = RemoteSessions { node in streams.to(node) }
        self.remoteSessions = remoteSessions
        let footprint = SessionFootprint()
        self.footprint = footprint
        let reconcile = SynchronizedBox<(@Sendable (NodeID) async -> Void)?>(nil)
        inbox = ClusterStreamInbox(
            remoteSessions: remoteSessions, footprint: footprint, gapCounter: metrics?.streamGaps, logger: logger
        ) { peer in
            await reconcile.get()?(peer)
        }
        let register = SynchronizedBox<(@Sendable (NodeID, UInt64, TenantID, QuerySub, [Int]) async throws -> Void)?>(nil)
        liveQueries = ClusterLiveQueries(
            link: .init(
                register: { owner, feed, tenant, sub, partitions in
                    guard let register = register.get() else { throw ClusterMessageError("this node is still starting") }
                    try await register(owner, feed, tenant, sub, partitions)
                },
                release: { owner, feeds in streams.to(owner).append(.sessionsEnded(incarnation: incarnation.get(), sessions: feeds)) },
                owners: { partitions in
                    let current = table.table
                    var owners: [NodeID: [Int]] = [:]
                    for partition in partitions { owners[current.owner(of: partition), default: []].append(partition) }
                    return owners
                },
                relyOn: { session, owner in footprint.add(session, on: owner) }),
            logger: logger)
        let subscribeJournal = SynchronizedBox<(@Sendable (NodeID, UInt64, TenantID, JournalSubscribe) async throws -> Void)?>(nil)
        journal = ClusterJournal(
            link: .init(
                register: { owner, feed, tenant, request in
                    guard let subscribe = subscribeJournal.get() else { throw ClusterMessageError("this node is still starting") }
                    try await subscribe(owner, feed, tenant, request)
                },
                release: { owner, feeds in streams.to(owner).append(.sessionsEnded(incarnation: incarnation.get(), sessions: feeds)) },
                sequencer: { tenant in table.table.owner(of: ClusterJournal.partition(of: tenant)) },
                relyOn: { session, owner in footprint.add(session, on: owner) }),
            logger: logger)
        subscribeJournal.set { [weak self] owner, feed, tenant, request in
            guard let self else { return }
            _ = try await self.call(owner, MessageType.journalSubscribe, .journalSubscribe(request), tenant: tenant, session: feed)
        }
        register.set { [weak self] owner, feed, tenant, sub, partitions in
            guard let self else { return }
            try await self.registerFeed(on: owner, feed: feed, tenant: tenant, sub: sub, partitions: partitions)
        }
        reconcile.set { [weak self] peer in await self?.reconcile(with: peer) }
        let inbox = self.inbox
        streams.loop { [localNode] body in try await inbox.receive(from: localNode, body: body) }
    }

    func attach(_ locals: Locals) {
        self.locals.set(locals)
        inbox.attach(.init(
            sessions: locals.sessions, topics: locals.topics, liveQueries: liveQueries, clusterJournal: journal, journal: locals.journal,
            release: { [weak self] sessions in await self?.release(sessions) }))
        let (table, localNode, streams) = (table, localNode, streams)
        locals.journal.sequence(by: .init(
            sequencer: { tenant in
                let assignment = table.table.assignment(of: ClusterJournal.partition(of: tenant))
                return (assignment.owner == localNode ? nil : assignment.owner, ClusterJournal.floor(epoch: assignment.epoch))
            },
            ship: { events, mapName, tenant, node in streams.to(node).append(.journalAppend(tenant: tenant, mapName: mapName, events: events)) }))
    }

    /// The tenant's journal sequencer when it is another node.
    func journalSequencer(of tenant: TenantID) -> NodeID? {
        let owner = table.table.owner(of: ClusterJournal.partition(of: tenant))
        return owner == localNode ? nil : owner
    }

    /// `JOURNAL_READ` on the tenant's sequencer: its `JOURNAL_READ_RESPONSE`, encoded.
    func journalRead(_ request: JournalRead, tenant: TenantID, session: SessionID, on sequencer: NodeID) async throws -> [UInt8] {
        let reply = try await call(sequencer, MessageType.journalRead, .journalRead(request), tenant: tenant, session: session.rawValue)
        guard case .binary(let bytes)? = reply["m"] else { throw ClusterMessageError("a journal reply has no message") }
        return bytes
    }

    /// Releases what other nodes' sessions (and live queries' feeds) hold here.
    func release(_ sessions: [SessionID]) async {
        guard let locals = locals.get() else { return }
        for session in sessions {
            await locals.cleanup.ending(session)
            if let store = feedStores.withLock({ $0.removeValue(forKey: session) }) { await store.removeSession(session) }
        }
    }

    /// Ticks the streams, releases the sessions of runs that are gone and moves counter
    /// watches to their counters' owners, until shutdown.
    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.streams.runTicks() }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: self.heartbeat)
                        await self.sweep()
                        await self.moveCounterWatches()
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: ClusterLiveQueries.retryInterval)
                        await self.liveQueries.retry()
                        await self.journal.retry()
                    }
                }
            }
        }
    }

    // MARK: Topics

    /// Pushes an encoded `TOPIC_MESSAGE` published here to every other member of the table.
    func publish(encoded bytes: [UInt8], topic: String, tenant: TenantID) {
        for member in table.table.members where member.id != localNode {
            streams.to(member.id).append(.topic(tenant: tenant, topic: topic, bytes: bytes))
        }
    }

    /// The `publisherId` of a session of this node, unique across the cluster.
    func publisherId(_ session: SessionID) -> String { "\(localNode)/\(session)" }

    // MARK: Client's node

    /// `COUNTER_REQUEST` for a counter `owner` holds: registers the watch there and answers
    /// the client with the owner's `COUNTER_RESPONSE`.
    func counterRequest(_ request: CounterRequest, tenant: TenantID, out: SessionOutbound, owner: NodeID) async throws {
        let reply = try await send(MessageType.counterRequest, .counterRequest(request), tenant: tenant, session: out.id, to: owner)
        guard case .binary(let response)? = reply["m"] else { throw ClusterMessageError("a counter reply has no message") }
        watches.withLock { $0.record(TenantScopedName(tenant: tenant, name: request.name), session: out.id, on: owner) }
        out.send(encoded: response)
    }

    /// `COUNTER_SYNC` for a counter `owner` holds; its `COUNTER_UPDATE` comes on the stream.
    func counterSync(_ sync: CounterSync, tenant: TenantID, out: SessionOutbound, owner: NodeID) async throws {
        _ = try await send(MessageType.counterSync, .counterSync(sync), tenant: tenant, session: out.id, to: owner)
        watches.withLock { $0.record(TenantScopedName(tenant: tenant, name: sync.name), session: out.id, on: owner) }
    }

    /// A session of this node watches a counter this node holds.
    func watchedHere(_ name: String, tenant: TenantID, session: SessionID) {
        watches.withLock { $0.record(TenantScopedName(tenant: tenant, name: name), session: session, on: localNode) }
    }

    func lockRequest(_ request: LockRequest, tenant: TenantID, out: SessionOutbound, owner: NodeID) async throws {
        lockAsked(request.name, tenant: tenant, session: out.id)
        _ = try await send(MessageType.lockRequest, .lockRequest(request), tenant: tenant, session: out.id, to: owner)
    }

    /// A session of this node asked for a lock (held here or elsewhere): wherever the lock
    /// goes, the session's end is told there.
    func lockAsked(_ name: String, tenant: TenantID, session: SessionID) {
        _ = lockNames.withLock { $0[session, default: []].insert(TenantScopedName(tenant: tenant, name: name)) }
    }

    func lockRelease(_ release: LockRelease, tenant: TenantID, out: SessionOutbound, owner: NodeID) async throws {
        _ = try await send(MessageType.lockRelease, .lockRelease(release), tenant: tenant, session: out.id, to: owner)
    }

    /// A session of this node ended: the nodes holding something for it are told.
    func sessionEnded(_ session: SessionID) async {
        await liveQueries.sessionEnded(session)
        await journal.sessionEnded(session)
        watches.withLock { $0.remove(session) }
        _ = lockNames.withLock { $0.removeValue(forKey: session) }
        let run = incarnation.get()
        for node in footprint.remove(session) {
            streams.to(node).append(.sessionsEnded(incarnation: run, sessions: [session.rawValue]))
        }
    }

    private func send(_ type: String, _ message: TopGunMessage, tenant: TenantID, session: SessionID, to owner: NodeID) async throws -> DataObject {
        // Recorded first: an end racing the request is told to the owner too.
        footprint.add(session, on: owner)
        return try await call(owner, type, message, tenant: tenant, session: session.rawValue)
    }

    /// A request about a session (or feed) of this node, to `owner` (this node itself included).
    private func call(
        _ owner: NodeID, _ type: String, _ message: TopGunMessage, tenant: TenantID, session: UInt64, extra: DataObject = [:]
    ) async throws -> DataObject {
        var object: DataObject = [
            "t": .string(tenant.rawValue), "i": .string(incarnation.get()), "s": .int(Int64(bitPattern: session)),
            "m": .binary(WireCodec().encode(message)),
        ]
        for field in extra.fields { object[field.key] = field.value }
        let body = ClusterCodec.encode(object)
        if owner == localNode { return try ClusterCodec.decode(try await serve(type, body: body, from: localNode)) }
        return try ClusterCodec.decode(try await transport.request(type, body, to: owner, timeout: timeout))
    }

    /// Registers the watches whose counter moved on the counter's new owner, and sends each
    /// session the state there. One that fails stays where it is and is tried again at the
    /// next heartbeat.
    func moveCounterWatches() async {
        guard let locals = locals.get() else { return }
        let router = table.router
        let misplaced = watches.withLock { watches in
            watches.misplaced { counter in
                router.table.owner(of: PartitionFunction.partition(forKey: counter.name, tenantID: counter.tenant.rawValue))
            }
        }
        for watch in misplaced {
            guard let out = locals.sessions.outbound(watch.session) else {
                watches.withLock { $0.remove(watch.session) }
                continue
            }
            let name = watch.counter.name
            do {
                if watch.owner == localNode {
                    guard locals.routing.nameRead(name, tenant: watch.counter.tenant) == .local else { continue }
                    let response = await locals.counters.request(name, tenant: watch.counter.tenant, subscriber: out)
                    watches.withLock { $0.record(watch.counter, session: watch.session, on: localNode) }
                    out.send(.counterUpdate(CounterUpdate(name: name, state: response.state)))
                } else {
                    let reply = try await send(
                        MessageType.counterRequest, .counterRequest(CounterRequest(name: name)), tenant: watch.counter.tenant,
                        session: watch.session, to: watch.owner)
                    guard case .binary(let bytes)? = reply["m"], case .counterResponse(let response) = try WireCodec().decode(bytes) else { continue }
                    watches.withLock { $0.record(watch.counter, session: watch.session, on: watch.owner) }
                    out.send(.counterUpdate(CounterUpdate(name: name, state: response.state)))
                }
            } catch {
                logger.debug("counter watch not moved yet", metadata: ["counter": "\(name)", "owner": "\(watch.owner)", "error": "\(error)"])
            }
        }
    }

    /// After a new table: locks' owners may have changed (their sessions' ends go to the new
    /// ones), members may have changed (a new one gets every lock), and counter watches
    /// follow their counters.
    func tableChanged() async {
        let current = table.table
        for (session, names) in lockNames.withLock({ $0 }) {
            for name in names {
                let owner = current.owner(of: PartitionFunction.partition(forKey: name.name, tenantID: name.tenant.rawValue))
                if owner != localNode { footprint.add(session, on: owner) }
            }
        }
        // A copy is stale once another node owns its partition under a later epoch (that node
        // restored its own copy); kept while this node owns it but has not taken it over yet
        // (a promotion that failed is tried again later, and restores them then).
        lockCopies.keepOnly { partition, epoch in
            current.owner(of: partition) == localNode || current.assignment(of: partition).epoch <= epoch
        }
        if let locals = locals.get() { await locals.locks.republish() }
        await liveQueries.tableChanged()
        await journal.tableChanged()
        await moveCounterWatches()
    }

    /// Registers a live query's feed on `owner` (this node itself included).
    private func registerFeed(on owner: NodeID, feed: UInt64, tenant: TenantID, sub: QuerySub, partitions: [Int]) async throws {
        _ = try await call(
            owner, MessageType.queryRegister, .querySub(sub), tenant: tenant, session: feed, extra: ["p": .array(partitions.map { .int(Int64($0)) })])
    }

    // MARK: Owner

    /// Serves a peer's counter, lock and session requests (`MessageType`).
    func serve(_ type: String, body: [UInt8], from peer: NodeID) async throws -> [UInt8] {
        if type == MessageType.lockCopy {
            lockCopies.store(try LockCopy(decoding: body))
            return ClusterCodec.encode([:])
        }
        guard let locals = locals.get() else { throw ClusterMessageError("this node is still starting") }
        let object = try ClusterCodec.decode(body)
        let run = RemoteSessions.Run(node: peer, incarnation: try object.required("i"))
        if type == MessageType.sessionsAlive {
            let ids: [Int64] = try object.required("s")
            guard run.incarnation == incarnation.get() else { return ClusterCodec.encode(["s": .array([])]) }
            // Open client sessions, and the feeds of this node's live queries and journal
            // subscriptions (ids of the same kind, never in the session registry).
            let feeds = ids.map { UInt64(bitPattern: $0) }
            let live = await liveQueries.liveFeeds(among: feeds).union(await journal.liveFeeds(among: feeds))
            let alive = ids.filter { id in
                live.contains(UInt64(bitPattern: id)) || locals.sessions.outbound(SessionID(rawValue: UInt64(bitPattern: id))) != nil
            }
            return ClusterCodec.encode(["s": .array(alive.map { .int($0) })])
        }
        let tenant = TenantID(try object.required("t") as String)
        let session: Int64 = try object.required("s")
        guard case .binary(let bytes)? = object["m"] else { throw ClusterMessageError("a \(type) request carries no message") }
        let message = try WireCodec().decode(bytes)
        if case .journalRead(let request) = message, type == MessageType.journalRead {
            // A read holds nothing for its session here.
            let owner = table.table.owner(of: ClusterJournal.partition(of: tenant))
            if owner != localNode { throw ClusterMessageError(ErrorMessage.partitionMoved(to: owner).message) }
            guard let from = UInt64(request.fromSequence) else { throw ClusterMessageError("fromSequence is not a sequence number") }
            let limit = Int(min(max(request.limit ?? 100, 1), 10_000))
            let (events, hasMore) = locals.journal.read(tenant: tenant, fromSequence: from, limit: limit, mapName: request.mapName)
            let response = TopGunMessage.journalReadResponse(JournalReadResponse(requestId: request.requestId, events: events, hasMore: hasMore))
            return ClusterCodec.encode(["m": .binary(WireCodec().encode(response))])
        }
        guard let subscriber = remoteSessions.subscriber(run, session: UInt64(bitPattern: session)) else {
            throw ClusterMessageError("session \(session) of node '\(peer)' has ended")
        }
        func sequencesHere(_ tenant: TenantID) throws {
            let owner = table.table.owner(of: ClusterJournal.partition(of: tenant))
            if owner != localNode { throw ClusterMessageError(ErrorMessage.partitionMoved(to: owner).message) }
        }
        func ownHere(_ name: String) throws {
            if let refusal = ReadRouting.refusal(locals.routing.nameRead(name, tenant: tenant)) { throw ClusterMessageError(refusal.message) }
        }
        switch (type, message) {
        case (MessageType.counterRequest, .counterRequest(let request)):
            try ownHere(request.name)
            let response = await locals.counters.request(request.name, tenant: tenant, subscriber: subscriber)
            return ClusterCodec.encode(["m": .binary(WireCodec().encode(.counterResponse(response)))])
        case (MessageType.counterSync, .counterSync(let sync)):
            try ownHere(sync.name)
            if let record = await locals.counters.sync(sync.name, state: sync.state, tenant: tenant, subscriber: subscriber) {
                _ = await locals.durability.enqueue([record])
            }
        case (MessageType.lockRequest, .lockRequest(let request)):
            try ownHere(request.name)
            await locals.locks.request(request, tenant: tenant, subscriber: subscriber)
        case (MessageType.lockRelease, .lockRelease(let release)):
            try ownHere(release.name)
            await locals.locks.release(release, tenant: tenant, subscriber: subscriber)
        case (MessageType.queryRegister, .querySub(let sub)):
            let partitions: [Int] = try object.required("p")
            let router = table.router
            for partition in partitions {
                guard (0..<PartitionFunction.partitionCount).contains(partition) else { throw ClusterMessageError("partition \(partition) out of range") }
                if case .remote(let owner) = router.route(partition: partition) { throw ClusterMessageError(ErrorMessage.partitionMoved(to: owner).message) }
                if locals.maps.unloaded.contains(partition) { throw ClusterMessageError(ErrorMessage.partitionNotLoaded(partition).message) }
            }
            let store = locals.maps.store(tenant: tenant, name: sub.mapName)
            feedStores.withLock { $0[subscriber.id] = store }
            let now = SystemClock().nowMillis()
            var more = await store.subscribe(sub, subscriber: subscriber, nowMillis: now, pageBytes: Self.feedPageBytes, partitions: Set(partitions))
            let stream = streams.to(peer)
            while more {
                await stream.waitForRoom()
                more = await store.sendNextResultPage(queryId: sub.queryId, session: subscriber.id, maxBytes: Self.feedPageBytes)
            }
            stream.append(.feedReady(feed: UInt64(bitPattern: session)))
        case (MessageType.journalSubscribe, .journalSubscribe(let request)):
            try sequencesHere(tenant)
            locals.journal.subscribe(
                tenant: tenant, subscriptionId: request.requestId, fromSequence: request.fromSequence.flatMap { UInt64($0) }, mapName: request.mapName,
                types: request.types, subscriber: subscriber)

        default:
            throw ClusterMessageError("a \(type) request carries a \(message.type)")
        }
        return ClusterCodec.encode([:])
    }

    /// `LockReplication`: copies the locks of `partition` to every other live node of the
    /// table, all at once, then calls `copied` (a node that does not answer within
    /// `lockCopyPatience` is not waited for: it is down or cut off, and will not take over).
    ///
    /// Every node, not only the partition's backups: a failover may give the partition to a
    /// node that was not one (`PartitionAssignment` balances owners), and that node must know
    /// the locks before it serves the partition. Locks are few and change seldom.
    func changed(
        partition: Int, locks: [LockTable.State], subscribers: [SessionID: any Subscriber], copied: @escaping @Sendable () -> Void
    ) {
        let current = table.table
        let assignment = current.assignment(of: partition)
        let live = Set(leases.get().leases.filter(\.isLive).map(\.lease.node))
        let replicas = current.members.map(\.id).filter { $0 != localNode && live.contains($0) }
        guard assignment.owner == localNode, !replicas.isEmpty else { return copied() }
        let run = incarnation.get()
        func address(_ session: SessionID) -> SessionAddress? {
            switch subscribers[session] {
            case let remote as RemoteSubscriber: remote.address
            case is SessionOutbound: SessionAddress(node: localNode, incarnation: run, session: session.rawValue)
            default: nil
            }
        }
        let replicated = locks.map { lock in
            ReplicatedLock(
                tenant: lock.name.tenant, name: lock.name.name, lastFencingToken: lock.lastFencingToken,
                holder: lock.holder.flatMap { holding in
                    address(holding.owner.session).map {
                        .init(session: $0, requestId: holding.owner.requestId, fencingToken: holding.fencingToken, remainingMillis: holding.remainingMillis)
                    }
                },
                queue: lock.queue.compactMap { waiting in
                    address(waiting.owner.session).map { .init(session: $0, requestId: waiting.owner.requestId, ttlMillis: waiting.ttlMillis) }
                })
        }
        let version = lockCopyVersion.add(1, ordering: .relaxed).newValue
        let body = LockCopy(partition: partition, epoch: assignment.epoch, version: version, locks: replicated).encoded()
        let (transport, logger) = (transport, logger)
        Task {
            await withTaskGroup(of: Void.self) { group in
                for node in replicas {
                    group.addTask {
                        do {
                            _ = try await transport.request(MessageType.lockCopy, body, to: node, timeout: Self.lockCopyPatience)
                        } catch {
                            logger.warning(
                                "a node did not take a lock copy; its grants go out without it",
                                metadata: ["peer": "\(node)", "partition": "\(partition)", "error": "\(error)"])
                        }
                    }
                }
            }
            copied()
        }
    }

    /// This node took `partition` over: restores the locks its copy holds, with the sessions
    /// that can still be reached (a session of a run that is gone is released by `sweep`).
    func restoreLocks(partition: Int) async {
        let copies = lockCopies.take(partition)
        guard !copies.isEmpty, let locals = locals.get() else { return }
        let run = incarnation.get()
        var subscribers: [SessionID: any Subscriber] = [:]
        func resolve(_ address: SessionAddress) -> SessionID? {
            if address.node == localNode {
                guard address.incarnation == run, let out = locals.sessions.outbound(SessionID(rawValue: address.session)) else { return nil }
                subscribers[out.id] = out
                return out.id
            }
            guard let remote = remoteSessions.subscriber(.init(node: address.node, incarnation: address.incarnation), session: address.session) else {
                return nil
            }
            subscribers[remote.id] = remote
            return remote.id
        }
        let states = copies.map { lock in
            LockTable.State(
                name: TenantScopedName(tenant: lock.tenant, name: lock.name), lastFencingToken: lock.lastFencingToken,
                holder: lock.holder.flatMap { holding in
                    resolve(holding.session).map {
                        .init(owner: .init(session: $0, requestId: holding.requestId), fencingToken: holding.fencingToken, remainingMillis: holding.remainingMillis)
                    }
                },
                queue: lock.queue.compactMap { waiting in
                    resolve(waiting.session).map { .init(owner: .init(session: $0, requestId: waiting.requestId), ttlMillis: waiting.ttlMillis) }
                })
        }
        await locals.locks.restore(partition: partition, states: states, subscribers: subscribers)
        logger.debug("locks taken over", metadata: ["partition": "\(partition)", "locks": "\(states.count)"])
    }

    /// Releases what sessions of runs that are gone hold here.
    private func sweep() async {
        await release(remoteSessions.sweep(leases.get()))
    }

    /// After a gap in `peer`'s stream: asks it which of its sessions holding something here
    /// are still open, and releases the others.
    private func reconcile(with peer: NodeID) async {
        guard let locals = locals.get() else { return }
        if peer == localNode {
            // Its own loopback lost pushes: what this node holds for its own sessions and feeds
            // is judged here.
            for (run, sessions) in remoteSessions.sessions(of: peer) {
                let live = await liveQueries.liveFeeds(among: sessions).union(await journal.liveFeeds(among: sessions))
                let alive = run.incarnation == incarnation.get()
                    ? Set(sessions.filter { live.contains($0) || locals.sessions.outbound(SessionID(rawValue: $0)) != nil }) : []
                await release(remoteSessions.keepOnly(run, alive: alive))
            }
            return
        }
        for (run, sessions) in remoteSessions.sessions(of: peer) {
            do {
                let body = ClusterCodec.encode(["i": .string(run.incarnation), "s": .array(sessions.map { .int(Int64(bitPattern: $0)) })])
                let reply = try ClusterCodec.decode(try await transport.request(MessageType.sessionsAlive, body, to: peer, timeout: timeout))
                let alive: [Int64] = try reply.required("s")
                await release(remoteSessions.keepOnly(run, alive: Set(alive.map { UInt64(bitPattern: $0) })))
            } catch {
                logger.debug("could not ask a peer which of its sessions are open", metadata: ["peer": "\(peer)", "error": "\(error)"])
            }
        }
    }
}
