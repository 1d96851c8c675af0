import Logging
import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// Each domain's handler, without sockets: a node's parts in memory, sessions whose frames
/// land in a stream, messages through the router.
@Suite struct DomainHandlerTests {
    static let context = RequestContext(tenant: "tn_handlers", principal: "alice", roles: [], requestId: "r1", keyId: "key_1")

    static func node() -> NodeComponents {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: "handlers"), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(),
            logger: logger)
    }

    /// A session of the node and what it receives.
    struct Client {
        var state: SessionState
        var iterator: AsyncStream<SessionOutbound.Item>.AsyncIterator

        init() {
            let (outbound, stream) = SessionOutbound.make()
            state = SessionState(outbound: outbound, rateLimiter: TokenBucket(capacity: 1_000, ratePerSecond: 1_000, nowNanos: 0))
            iterator = stream.makeAsyncIterator()
        }

        mutating func send(_ message: TopGunMessage, to router: MessageRouter) async {
            await router.handle(message, context: DomainHandlerTests.context, session: &state)
        }

        /// The next message this session received.
        mutating func next() async -> TopGunMessage? {
            while let item = await iterator.next() {
                if case .frame(let bytes) = item { return try? WireCodec().decode(bytes) }
            }
            return nil
        }
    }

    static func put(_ key: String, _ value: DataValue, map: String = "todos", millis: Int64 = 1_000) -> ClientOp {
        ClientOp(id: key, mapName: map, key: key, opType: "PUT", record: LWWRecord(value: value, timestamp: Timestamp(millis: millis, counter: 0, nodeId: "c1")))
    }

    @Test func writesAreAppliedAndAcknowledged() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.opBatch(OpBatch(ops: [Self.put("a", 1), Self.put("b", 2)], writeConcern: .applied)), to: router)
        guard case .opAck(let ack) = await client.next() else { Issue.record("no OP_ACK"); return }
        #expect(ack.lastId == "b")
        #expect(ack.results?.allSatisfy(\.success) == true)
    }

    @Test func lwwSyncAnswersTheRootAndBuckets() async {
        let node = Self.node()
        let router = node.messageRouter
        var client = Client()
        await client.send(.opBatch(OpBatch(ops: [Self.put("a", 1)], writeConcern: .applied)), to: router)
        _ = await client.next()
        await client.send(.syncInit(SyncInit(mapName: "todos")), to: router)
        guard case .syncRespRoot(let root) = await client.next() else { Issue.record("no SYNC_RESP_ROOT"); return }
        var whole = LWWMap()
        whole.merge(key: "a", record: Self.put("a", 1).record!)
        #expect(root.rootHash == whole.merkleTree.rootHash)
        await client.send(.merkleReqBucket(MerkleReqBucket(mapName: "unknown", path: "")), to: router)
        guard case .syncRespBuckets(let buckets) = await client.next() else { Issue.record("no buckets"); return }
        #expect(buckets.buckets.entries.isEmpty, "a map that does not exist has no buckets, and is not created")
        #expect(node.maps.existingStore(tenant: Self.context.tenant, name: "unknown") == nil)
    }

    @Test func orMapSyncRefusesAnLWWMapAndAnswersDiffs() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.opBatch(OpBatch(ops: [Self.put("a", 1)], writeConcern: .applied)), to: router)
        _ = await client.next()
        await client.send(.ormapSyncInit(ORMapSyncInit(mapName: "todos", rootHash: 0, bucketHashes: WireDictionary([]))), to: router)
        guard case .errorMessage(let error) = await client.next() else { Issue.record("no ERROR"); return }
        #expect(error.code == 400)
        await client.send(.ormapDiffRequest(ORMapDiffRequest(mapName: "tags", keys: ["k"])), to: router)
        guard case .ormapDiffResponse(let diff) = await client.next() else { Issue.record("no diff"); return }
        #expect(diff.mapName == "tags" && diff.entries.isEmpty, "a map that does not exist has no entries")
    }

    @Test func queriesAnswerAndStayLive() async {
        let router = Self.node().messageRouter
        var watcher = Client()
        var writer = Client()
        await watcher.send(.querySub(QuerySub(queryId: "q1", mapName: "todos", query: Query())), to: router)
        guard case .queryResp(let response) = await watcher.next() else { Issue.record("no QUERY_RESP"); return }
        #expect(response.results.isEmpty)
        await writer.send(.opBatch(OpBatch(ops: [Self.put("a", 1)], writeConcern: .applied)), to: router)
        var sawUpdate = false
        for _ in 0..<3 {
            if case .queryUpdate(let update) = await watcher.next() {
                #expect(update.queryId == "q1" && update.key == "a" && update.changeType == .enter)
                sawUpdate = true
                break
            }
        }
        #expect(sawUpdate)
        await watcher.send(.queryUnsub(QueryUnsub(queryId: "q1")), to: router)
        #expect(watcher.state.queryMaps.isEmpty)
    }

    @Test func topicsCheckNamesAndReachOtherSubscribers() async {
        let router = Self.node().messageRouter
        var subscriber = Client()
        var publisher = Client()
        await subscriber.send(.topicSub(TopicSub(topic: "bad name!")), to: router)
        guard case .errorMessage(let error) = await subscriber.next() else { Issue.record("no ERROR"); return }
        #expect(error.code == 400)
        await subscriber.send(.topicSub(TopicSub(topic: "news")), to: router)
        await publisher.send(.topicPub(TopicPub(topic: "news", data: "hello")), to: router)
        guard case .topicMessage(let message) = await subscriber.next() else { Issue.record("no TOPIC_MESSAGE"); return }
        #expect(message.data == "hello")
    }

    @Test func locksAreGrantedAndNamesChecked() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.lockRequest(LockRequest(requestId: "l1", name: "")), to: router)
        guard case .errorMessage(let error) = await client.next() else { Issue.record("no ERROR"); return }
        #expect(error.code == 400)
        await client.send(.lockRequest(LockRequest(requestId: "l2", name: "door")), to: router)
        guard case .lockGranted(let granted) = await client.next() else { Issue.record("no LOCK_GRANTED"); return }
        #expect(granted.requestId == "l2")
    }

    @Test func countersMergeAndAnswer() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.counterSync(CounterSync(name: "likes", state: CounterState(PNCounter(positive: ["n1": 3])))), to: router)
        guard case .counterUpdate(let update) = await client.next() else { Issue.record("no COUNTER_UPDATE"); return }
        #expect(update.state.counter.value == 3)
        await client.send(.counterRequest(CounterRequest(name: "likes")), to: router)
        guard case .counterResponse(let response) = await client.next() else { Issue.record("no COUNTER_RESPONSE"); return }
        #expect(response.state.counter.value == 3)
    }

    @Test func theJournalIsReadBySequence() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.opBatch(OpBatch(ops: [Self.put("a", 1)], writeConcern: .applied)), to: router)
        _ = await client.next()
        await client.send(.journalRead(JournalRead(requestId: "j1", fromSequence: "x")), to: router)
        guard case .errorMessage(let error) = await client.next() else { Issue.record("no ERROR"); return }
        #expect(error.code == 400)
        await client.send(.journalRead(JournalRead(requestId: "j2", fromSequence: "0")), to: router)
        guard case .journalReadResponse(let read) = await client.next() else { Issue.record("no JOURNAL_READ_RESPONSE"); return }
        #expect(read.events.map(\.key) == ["a"])
    }

    @Test func thePartitionMapIsSentWhenTheClientsIsOlder() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.partitionMapRequest(PartitionMapRequest(currentVersion: nil)), to: router)
        guard case .partitionMap(let map) = await client.next() else { Issue.record("no PARTITION_MAP"); return }
        #expect(map.version == 1 && map.partitions.count == 271)
        await client.send(.partitionMapRequest(PartitionMapRequest(currentVersion: 1)), to: router)
        await client.send(.syncInit(SyncInit(mapName: "m")), to: router)
        guard case .syncRespRoot = await client.next() else { Issue.record("a current client got a map again"); return }
    }

    @Test func unbuiltFeaturesAnswerWithTheirReplyTypeAndServerMessagesAreRefused() async {
        let router = Self.node().messageRouter
        var client = Client()
        await client.send(.search(Search(requestId: "s1", mapName: "m", query: "x")), to: router)
        guard case .searchResp(let response) = await client.next() else { Issue.record("no SEARCH_RESP"); return }
        #expect(response.error == Unsupported.search)
        await client.send(.authAck(AuthAck(protocolVersion: 1, userId: "x")), to: router)
        guard case .errorMessage(let error) = await client.next() else { Issue.record("no ERROR"); return }
        #expect(error.code == 400)
    }
}
