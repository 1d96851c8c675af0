import Tenancy
import TopGunWire

/// Hands an authenticated message to the handler of its domain (protocol.md §6.6), and
/// nothing else: each domain's rules live in its handler, with the collaborators it uses.
/// A class, made once per node and shared by every connection.
public final class MessageRouter: Sendable {
    public struct Handlers: Sendable {
        public var writes: WriteHandler
        public var lwwSync: LWWSyncHandler
        public var orMapSync: ORMapSyncHandler
        public var queries: QueryHandler
        public var topics: TopicHandler
        public var locks: LockHandler
        public var counters: CounterHandler
        public var journal: JournalHandler
        public var partitionMap: PartitionMapHandler
        public var unbuilt = UnbuiltFeatureHandler()

        public init(
            writes: WriteHandler, lwwSync: LWWSyncHandler, orMapSync: ORMapSyncHandler, queries: QueryHandler, topics: TopicHandler,
            locks: LockHandler, counters: CounterHandler, journal: JournalHandler, partitionMap: PartitionMapHandler
        ) {
            self.writes = writes
            self.lwwSync = lwwSync
            self.orMapSync = orMapSync
            self.queries = queries
            self.topics = topics
            self.locks = locks
            self.counters = counters
            self.journal = journal
            self.partitionMap = partitionMap
        }
    }

    let handlers: Handlers
    let replies: ErrorReplies

    public init(handlers: Handlers, metrics: DataPlaneMetrics) {
        self.handlers = handlers
        self.replies = ErrorReplies(metrics: metrics)
    }

    /// Not inlined into the connection's loop on purpose: the loop's async frame lives as long
    /// as the connection, and every local of an inlined handler would live in it too.
    @inline(never)
    public func handle(_ message: TopGunMessage, context: RequestContext, session: inout SessionState) async {
        let out = session.outbound
        switch message {
        case .opBatch(let batch):
            await handlers.writes.handle(batch.ops, batchConcern: batch.writeConcern, timeout: batch.timeout, context: context, session: &session)
        case .clientOp(let single):
            await handlers.writes.handle([single.op], batchConcern: nil, timeout: single.op.timeout, context: context, session: &session)

        case .syncInit(let request): await handlers.lwwSync.syncInit(request, context: context, out: out)
        case .merkleReqBucket(let request): await handlers.lwwSync.bucket(request, context: context, out: out)
        case .clientApplyAck, .querySyncInit: break  // no tombstone GC yet, nothing to confirm (protocol.md §6.6.3b)

        case .ormapSyncInit(let request): await handlers.orMapSync.syncInit(request, context: context, out: out)
        case .ormapMerkleReqBucket(let request): await handlers.orMapSync.bucket(request, context: context, out: out)
        case .ormapDiffRequest(let request): await handlers.orMapSync.diff(request, context: context, out: out)
        case .ormapPushDiff(let push): await handlers.orMapSync.pushDiff(push, context: context, out: out)

        case .querySub(let sub): await handlers.queries.subscribe(sub, context: context, session: &session)
        case .queryUnsub(let unsub): await handlers.queries.unsubscribe(unsub, session: &session)

        case .topicSub(let sub): await handlers.topics.subscribe(sub, context: context, out: out)
        case .topicUnsub(let unsub): await handlers.topics.unsubscribe(unsub, context: context, out: out)
        case .topicPub(let pub): await handlers.topics.publish(pub, context: context, out: out)

        case .lockRequest(let request): await handlers.locks.request(request, context: context, out: out)
        case .lockRelease(let release): await handlers.locks.release(release, context: context, out: out)

        case .counterRequest(let request): await handlers.counters.request(request, context: context, out: out)
        case .counterSync(let sync): await handlers.counters.sync(sync, context: context, out: out)

        case .journalSubscribe(let request): await handlers.journal.subscribe(request, context: context, out: out)
        case .journalUnsubscribe(let request): await handlers.journal.unsubscribe(request, context: context, out: out)
        case .journalRead(let request): await handlers.journal.read(request, context: context, out: out)

        case .partitionMapRequest(let request): handlers.partitionMap.request(request, context: context, out: out)

        // Session messages the handshake already handled.
        case .auth, .deviceHello, .ping:
            break

        default:
            if handlers.unbuilt.answer(message, out: out) { return }
            // Messages only servers send.
            replies.badRequest("\(message.type) is sent by servers, not clients", field: "type", to: out)
        }
    }
}
