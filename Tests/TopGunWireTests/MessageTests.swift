import Testing
import TopGunCore
import TopGunWire

/// Frames the real client sends (protocol.md §6.2, §12.1) decode to the expected typed
/// messages, and every message type of the model survives encoding.
@Suite struct MessageTests {
    static let codec = WireCodec()

    static func decode(_ text: String) throws -> TopGunMessage {
        try codec.decode(hex(text))
    }

    /// Decodes a JSON frame both as JSON text and as the msgpackr bytes of the same value;
    /// the two must agree.
    static func decodeClientFrame(_ json: String) throws -> TopGunMessage {
        let fromJSON = try codec.decode(json: json)
        let fromMessagePack = try codec.decode(msgpackrBytes(try JSONFrameReader().decode(json)))
        #expect(fromJSON == fromMessagePack)
        return fromMessagePack
    }

    static let clientTimestamp = Timestamp(millis: 1_795_554_913_742, counter: 0, nodeId: "client-node-1")

    // MARK: - §6.2 frames (hex)

    @Test func decodesTheClientFramesOfSection6_2() throws {
        #expect(
            try Self.decode("de0002 a474797065 a450494e47 a974696d657374616d70 cb4278bcfe56800000")
                == .ping(Ping(timestamp: 1_700_000_000_000)))
        #expect(try Self.decode("de0002a474797065a441555448a5746f6b656ea3616263") == .auth(Auth(token: "abc")))
        #expect(try Self.decode("de0001a474797065ac4445564943455f48454c4c4f") == .deviceHello(DeviceHello()))
        #expect(
            try Self.decode(
                "de0003a474797065a953594e435f494e4954a76d61704e616d65a5746f646f73b16c61737453796e6354696d657374616d7000")
                == .syncInit(SyncInit(mapName: "todos", lastSyncTimestamp: 0)))
        #expect(try Self.decode("de 0001 a4 74797065 ad 415554485f5245515549524544") == .authRequired(AuthRequired()))
    }

    @Test func encodesAuthRequiredAsTheServerShouldSendIt() throws {
        let bytes = Self.codec.encode(.authRequired(AuthRequired()))
        #expect(try MessagePackReader().decode(bytes) == ["type": "AUTH_REQUIRED"])
    }

    // MARK: - §12.1 frames (observed from the HEAD client)

    @Test func decodesTheObservedAuthFrames() throws {
        #expect(try Self.decodeClientFrame(#"{"type":"AUTH","token":"tok"}"#) == .auth(Auth(token: "tok")))
        #expect(try Self.decodeClientFrame(#"{"type":"DEVICE_HELLO"}"#) == .deviceHello(DeviceHello()))
    }

    @Test func keepsTheHeadClientsExtraOpKeys() throws {
        let json = """
            {"type":"OP_BATCH","payload":{"ops":[{"mapName":"todos","opType":"PUT","key":"t1",
            "record":{"value":{"title":"a","done":false},"timestamp":{"millis":1795554913742,"counter":0,"nodeId":"client-node-1"}},
            "timestamp":{"millis":1795554913742,"counter":0,"nodeId":"client-node-1"},"synced":false,"id":"1"}]}}
            """
        let message = try Self.decodeClientFrame(json)
        let expectedOp = ClientOp(
            id: "1", mapName: "todos", key: "t1", opType: "PUT",
            record: LWWRecord(value: ["title": "a", "done": false], timestamp: Self.clientTimestamp),
            timestamp: Self.clientTimestamp, synced: false)
        #expect(message == .opBatch(OpBatch(ops: [expectedOp])))
        // Re-encoded, the op still carries `timestamp` and `synced`.
        let op = WireCodec.dataValue(of: message).objectValue?["payload"]?.objectValue?["ops"]?.arrayValue?.first?.objectValue
        #expect(op?["synced"] == false)
        #expect(op?["timestamp"] == Self.clientTimestamp.wireValue)
        #expect(WireCodec.dataValue(of: message) == (try JSONFrameReader().decode(json)))
    }

    @Test func decodesTheObservedRemoveAsATombstone() throws {
        let json = """
            {"type":"OP_BATCH","payload":{"ops":[{"mapName":"todos","opType":"REMOVE","key":"t1",
            "record":{"value":null,"timestamp":{"millis":1795554913800,"counter":0,"nodeId":"client-node-1"}},
            "timestamp":{"millis":1795554913800,"counter":0,"nodeId":"client-node-1"},"synced":false,"id":"2"}]}}
            """
        guard case .opBatch(let batch) = try Self.decodeClientFrame(json) else {
            Issue.record("not an OP_BATCH")
            return
        }
        #expect(batch.ops.first?.record?.isTombstone == true)
        #expect(batch.ops.first?.id == "2")
    }

    @Test func decodesTheObservedQuerySubscription() throws {
        let json = """
            {"type":"QUERY_SUB","payload":{"queryId":"517f06eb-1c1e-4b7a-9d55-2f3c7b8e9a10","mapName":"todos",
            "query":{"where":{"done":false},"sort":[{"field":"title","direction":"asc"}],"limit":5}}}
            """
        let expected = QuerySub(
            queryId: "517f06eb-1c1e-4b7a-9d55-2f3c7b8e9a10", mapName: "todos",
            query: try Query(from: ["where": ["done": false], "sort": [["field": "title", "direction": "asc"]], "limit": 5]))
        #expect(try Self.decodeClientFrame(json) == .querySub(expected))
    }

    @Test func decodesTheObservedSyncFrames() throws {
        #expect(
            try Self.decodeClientFrame(#"{"type":"SYNC_INIT","mapName":"todos","lastSyncTimestamp":0}"#)
                == .syncInit(SyncInit(mapName: "todos", lastSyncTimestamp: 0)))
        #expect(
            try Self.decodeClientFrame(#"{"type":"MERKLE_REQ_BUCKET","payload":{"mapName":"todos","path":""}}"#)
                == .merkleReqBucket(MerkleReqBucket(mapName: "todos", path: "")))
    }

    @Test func decodesTheObservedTokenlessFrames() throws {
        #expect(
            try Self.decodeClientFrame(#"{"type":"COUNTER_REQUEST","payload":{"name":"likes"}}"#)
                == .counterRequest(CounterRequest(name: "likes")))
        #expect(
            try Self.decodeClientFrame(#"{"type":"LOCK_REQUEST","payload":{"requestId":"r-1","name":"L1","ttl":1000}}"#)
                == .lockRequest(LockRequest(requestId: "r-1", name: "L1", ttl: 1000)))
        #expect(try Self.decodeClientFrame(#"{"type":"TOPIC_SUB","payload":{"topic":"news"}}"#) == .topicSub(TopicSub(topic: "news")))
        #expect(
            try Self.decodeClientFrame(#"{"type":"TOPIC_PUB","payload":{"topic":"news","data":{"hi":1}}}"#)
                == .topicPub(TopicPub(topic: "news", data: ["hi": 1])))
        #expect(
            try Self.decodeClientFrame(#"{"type":"PING","timestamp":1795554918742}"#)
                == .ping(Ping(timestamp: 1_795_554_918_742)))
    }

    // MARK: - Envelope details

    @Test func typeNeedNotBeTheFirstKey() throws {
        let frame: DataValue = ["timestamp": 5, "type": "PING"]
        #expect(try Self.codec.decode(MessagePackWriter.encode(frame)) == .ping(Ping(timestamp: 5)))
        let payloadFirst: DataValue = ["payload": ["topic": "t"], "type": "TOPIC_SUB"]
        #expect(try Self.codec.decode(MessagePackWriter.encode(payloadFirst)) == .topicSub(TopicSub(topic: "t")))
    }

    @Test func unknownKeysAreIgnored() throws {
        let frame: DataValue = ["type": "TOPIC_SUB", "payload": ["topic": "t", "future": [1, 2]], "extra": true]
        #expect(try Self.codec.decode(MessagePackWriter.encode(frame)) == .topicSub(TopicSub(topic: "t")))
    }

    @Test func partitionMapRequestMayComeWithoutPayload() throws {
        #expect(
            try Self.codec.decode(json: #"{"type":"PARTITION_MAP_REQUEST"}"#)
                == .partitionMapRequest(PartitionMapRequest()))
        #expect(
            try Self.codec.decode(json: #"{"type":"PARTITION_MAP_REQUEST","payload":{"currentVersion":3}}"#)
                == .partitionMapRequest(PartitionMapRequest(currentVersion: 3)))
    }

    @Test func serverEventKeepsTheLegacyTopLevelTimestamp() throws {
        let serverTime = Timestamp(millis: 1_700_000_000_500, counter: 2, nodeId: "server")
        let event = ServerEvent(
            payload: ServerEventPayload(
                mapName: "todos", eventType: .put, key: "t1",
                record: LWWRecord(value: nil, timestamp: Self.clientTimestamp)),
            timestamp: serverTime)
        let value = WireCodec.dataValue(of: .serverEvent(event))
        #expect(value.objectValue?["timestamp"] == serverTime.wireValue)
        #expect(value.objectValue?["payload"]?.objectValue?["record"]?.objectValue?["value"] == .null)
        #expect(try Self.codec.decode(Self.codec.encode(.serverEvent(event))) == .serverEvent(event))
        // Without the timestamp, exactly `{type, payload}`.
        let bare = WireCodec.dataValue(of: .serverEvent(ServerEvent(payload: event.payload)))
        #expect(bare.objectValue?.keys == ["type", "payload"])
    }

    @Test func serverBatchEventKeepsTheLegacyTopLevelTimestamp() throws {
        let json = """
            {"type":"SERVER_BATCH_EVENT","timestamp":{"millis":10,"counter":0,"nodeId":"s"},
            "payload":{"events":[{"mapName":"m","eventType":"OR_REMOVE","key":"k","orTag":"1:0:n"}]}}
            """
        let message = try Self.codec.decode(json: json)
        #expect(
            message
                == .serverBatchEvent(
                    ServerBatchEvent(
                        events: [ServerEventPayload(mapName: "m", eventType: .orRemove, key: "k", orTag: "1:0:n")],
                        timestamp: Timestamp(millis: 10, counter: 0, nodeId: "s"))))
        #expect(WireCodec.dataValue(of: message) == (try JSONFrameReader().decode(json)))
    }

    // MARK: - Counters

    @Test func counterStateAcceptsTheClientSpelling() throws {
        let json = #"{"type":"COUNTER_SYNC","payload":{"name":"likes","state":{"positive":{"n2":1},"negative":{}}}}"#
        guard case .counterSync(let sync) = try Self.decodeClientFrame(json) else {
            Issue.record("not a COUNTER_SYNC")
            return
        }
        #expect(sync.state.positive == ["n2": 1])
        #expect(sync.state.negative == [:])
        #expect(sync.state.spellings == [.long])
        #expect(sync.state.value == 1)
        // Encoded back exactly as it came.
        #expect(WireCodec.dataValue(of: .counterSync(sync)) == (try JSONFrameReader().decode(json)))
    }

    @Test func counterStateAcceptsTheSchemaSpelling() throws {
        let json = #"{"type":"COUNTER_RESPONSE","payload":{"name":"c","state":{"p":{"a":3,"b":2.5},"n":{"a":1}}}}"#
        guard case .counterResponse(let response) = try Self.codec.decode(json: json) else {
            Issue.record("not a COUNTER_RESPONSE")
            return
        }
        #expect(response.state.positive == ["a": 3, "b": 2.5])
        #expect(response.state.negative == ["a": 1])
        #expect(response.state.spellings == [.short])
        #expect(response.state.value == 4.5)
        #expect(WireCodec.dataValue(of: .counterResponse(response)) == (try JSONFrameReader().decode(json)))
    }

    @Test func counterStateMadeByTheServerCarriesBothSpellings() throws {
        let state = CounterState(positive: ["n1": 5, "n2": 1], negative: ["n1": 2])
        let expected: DataValue = [
            "p": ["n1": 5, "n2": 1], "n": ["n1": 2], "positive": ["n1": 5, "n2": 1], "negative": ["n1": 2],
        ]
        #expect(state.wireValue == expected)
        let update = TopGunMessage.counterUpdate(CounterUpdate(name: "c", state: state))
        #expect(try Self.codec.decode(Self.codec.encode(update)) == update)
        #expect(CounterState(PNCounter(positive: ["x": 1])).spellings == Set(CounterState.Spelling.allCases))
        #expect(state.counter.value == 4)
    }

    @Test func counterStateWithBothSpellingsTakesTheLargerCount() throws {
        let state = try CounterState(wire: ["p": ["a": 1], "positive": ["a": 4, "b": 2], "n": [:]])
        #expect(state.positive == ["a": 4, "b": 2])
        #expect(state.spellings == [.short, .long])
        // An empty map is an empty counter, answered in both spellings.
        let empty = try CounterState(wire: [:])
        #expect(empty.positive.isEmpty && empty.negative.isEmpty)
        #expect(empty.spellings == Set(CounterState.Spelling.allCases))
    }

    @Test func counterEqualityIgnoresSpelling() {
        let short = CounterState(positive: ["a": 1], negative: [:], spellings: [.short])
        let long = CounterState(positive: ["a": 1], negative: [:], spellings: [.long])
        #expect(short == long)
        #expect(short != CounterState(positive: ["a": 2], negative: [:], spellings: [.short]))
    }

    // MARK: - HTTP sync bodies

    @Test func httpSyncRequestWithoutTypeDecodes() throws {
        let json = """
            {"clientId":"client-1","clientHlc":{"millis":1700000000000,"counter":1,"nodeId":"node-1"},
             "operations":[{"id":"1","mapName":"todos","opType":"PUT","key":"t1",
               "record":{"value":{"title":"a"},"timestamp":{"millis":1700000000000,"counter":0,"nodeId":"node-1"}}}],
             "syncMaps":[{"mapName":"todos","lastSyncTimestamp":{"millis":0,"counter":0,"nodeId":""}}],
             "queries":[{"queryId":"q-1","mapName":"todos","filter":{"done":false},"limit":10,"offset":0}]}
            """
        let message = try Self.decodeClientFrame(json)
        guard case .httpSyncRequest(let request) = message else {
            Issue.record("not an HTTP sync request: \(message)")
            return
        }
        #expect(request.clientId == "client-1")
        #expect(request.syncMaps?.first?.lastSyncTimestamp == .zero)
        #expect(request.queries?.first?.filter == ["done": false])
        #expect(request.operations?.first?.record?.value == ["title": "a"])
        #expect(message.type == "")
        #expect(WireCodec.dataValue(of: message) == (try JSONFrameReader().decode(json)))
    }

    @Test func httpSyncResponseWithoutTypeDecodes() throws {
        let json = """
            {"serverHlc":{"millis":5,"counter":0,"nodeId":"srv"},
             "ack":{"lastId":"1","results":[{"opId":"1","success":true,"achievedLevel":"MEMORY"}]},
             "deltas":[{"mapName":"todos","records":[{"key":"t1","record":{"value":null,"timestamp":{"millis":4,"counter":0,"nodeId":"c"}},"eventType":"REMOVE"}],
               "serverSyncTimestamp":{"millis":5,"counter":0,"nodeId":"srv"}}],
             "queryResults":[{"queryId":"q-1","results":[{"key":"t1","value":1}],"hasMore":false}],
             "searchResults":[{"searchId":"s-1","results":[],"totalCount":0}],
             "errors":[{"code":403,"message":"Access denied","context":"secret"}]}
            """
        let message = try Self.codec.decode(json: json)
        guard case .httpSyncResponse(let response) = message else {
            Issue.record("not an HTTP sync response: \(message)")
            return
        }
        #expect(response.ack?.results?.first?.achievedLevel == .memory)
        #expect(response.deltas?.first?.records.first?.eventType == .remove)
        #expect(response.deltas?.first?.records.first?.record.isTombstone == true)
        #expect(response.errors?.first?.code == 403)
        #expect(WireCodec.dataValue(of: message) == (try JSONFrameReader().decode(json)))
        #expect(try Self.codec.decode(Self.codec.encode(message)) == message)
    }

    // MARK: - Binary fields

    @Test func queryVectorAcceptsBinaryAndTheClientsIndexedMap() throws {
        let floats: [Float] = [1, -0.5]
        let vector = WireBinary(littleEndianFloat32s: floats)
        #expect(vector.bytes == [0, 0, 0x80, 0x3f, 0, 0, 0, 0xbf])
        #expect(vector.littleEndianFloat32s == floats)
        let indexed = DataValue.object(
            DataObject(fields: vector.bytes.enumerated().reversed().map { .init(key: String($0.offset), value: .int(Int64($0.element))) }))
        let frame: DataValue = ["type": "VECTOR_SEARCH", "payload": ["id": "v", "mapName": "m", "queryVector": indexed, "k": 3]]
        let expected = TopGunMessage.vectorSearch(VectorSearch(id: "v", mapName: "m", queryVector: vector, k: 3))
        #expect(try Self.codec.decode(msgpackrBytes(frame)) == expected)
        #expect(try WireBinary(wire: .binary(vector.bytes)) == vector)
        #expect(try WireBinary(wire: [1, 2, 255]) == WireBinary([1, 2, 255]))
        #expect(throws: WireDecodingError.self) { try WireBinary(wire: ["0": 1, "2": 2]) }
        #expect(throws: WireDecodingError.self) { try WireBinary(wire: ["0": 256]) }
        #expect(throws: WireDecodingError.self) { try WireBinary(wire: ["00": 1]) }
    }

    // MARK: - Every message type

    @Test func everyMessageTypeHasADistinctWireType() {
        #expect(Self.samples.count == 95)
        let types = Self.samples.map(\.type)
        #expect(Set(types).count == types.count - 1)  // the two HTTP sync bodies share ""
        #expect(types.filter(\.isEmpty).count == 2)
    }

    @Test(arguments: samples)
    func everyMessageTypeSurvivesMessagePackAndJSON(message: TopGunMessage) throws {
        let fromMessagePack = try Self.codec.decode(Self.codec.encode(message))
        #expect(fromMessagePack == message)
        #expect(WireCodec.dataValue(of: fromMessagePack) == WireCodec.dataValue(of: message))
        let fromJSON = try Self.codec.decode(json: JSONWriter.string(WireCodec.dataValue(of: message)))
        #expect(fromJSON == message)
        // Envelope: flat messages put `type` beside the fields, payload messages nest them.
        let value = WireCodec.dataValue(of: message).objectValue
        if !message.type.isEmpty {
            #expect(value?.fields.first?.key == "type")
            #expect(value?["type"] == .string(message.type))
        }
    }

    static let ts = Timestamp(millis: 1_700_000_000_000, counter: 3, nodeId: "node-1")
    static let lww = LWWRecord(value: ["name": "Alice"], timestamp: ts, ttlMs: 60_000)
    static let orRecord = ORMapRecord(value: "red", timestamp: ts, tag: "1700000000000:3:node-1", ttlMs: 5000)
    static let orEntry = ORMapEntry(key: "tags", records: [orRecord], tombstones: ["1:0:n"])
    static let op = ClientOp(
        id: "7", mapName: "m", key: "k", opType: "PUT", record: lww, orRecord: orRecord, orTag: "t",
        writeConcern: .persisted, timeout: 500, timestamp: ts, synced: false)
    static let options = SearchOptions(
        limit: 10, minScore: 0.5, boost: WireDictionary([(key: "title", value: 2)]), includeMatchedTerms: true,
        afterScore: 0.75, afterKey: "k")
    static let buckets = WireDictionary<UInt32>([(key: "0", value: 1), (key: "f", value: UInt32.max)])
    static let scores = WireDictionary<Double>([(key: "exact", value: 1), (key: "semantic", value: 0.25)])
    static let journalEvent = JournalEvent(
        sequence: "42", type: .update, mapName: "m", key: "k", value: 2, previousValue: 1, timestamp: ts,
        nodeId: "node-1", metadata: ["by": "me"])
    static let vector = WireBinary(littleEndianFloat32s: [0.5, 1])

    static let samples: [TopGunMessage] = [
        .authRequired(AuthRequired(reason: "token expired")),
        .auth(Auth(token: "jwt", protocolVersion: 1, deviceToken: "dt")),
        .authAck(AuthAck(protocolVersion: 1, userId: "u", deviceId: "d", deviceToken: "dt")),
        .authFail(AuthFail(error: "bad", code: 401)),
        .deviceHello(DeviceHello(deviceToken: "dt")),
        .deviceAck(DeviceAck(deviceId: "d", deviceToken: "dt")),
        .ping(Ping(timestamp: 1_700_000_000_000)),
        .pong(Pong(timestamp: 1_700_000_000_000, serverTime: 1_700_000_000_005)),
        .errorMessage(ErrorMessage(code: 413, message: "too large", details: ["limit": 2_097_152])),
        .clientOp(ClientOpMessage(op: op)),
        .opBatch(OpBatch(ops: [op, ClientOp(mapName: "m", key: "k2")], writeConcern: .applied, timeout: 1000)),
        .opAck(
            OpAck(
                lastId: "7", achievedLevel: .persisted,
                results: [OpResult(opId: "7", success: false, achievedLevel: .fireAndForget, error: "denied")])),
        .opRejected(OpRejected(opId: "7", reason: "Access Denied", code: 403)),
        .serverEvent(
            ServerEvent(
                payload: ServerEventPayload(mapName: "m", eventType: .orAdd, key: "k", record: lww, orRecord: orRecord, orTag: "t"),
                timestamp: ts)),
        .serverBatchEvent(
            ServerBatchEvent(events: [ServerEventPayload(mapName: "m", eventType: .remove, key: "k")], timestamp: ts)),
        .mergeRejected(MergeRejected(mapName: "m", key: "k", attemptedValue: [1, 2], reason: "no", timestamp: ts)),
        .batch(Batch(count: 1, data: WireBinary([1, 0, 0, 0, 1, 0, 0, 0, 0xc0]))),
        .syncInit(SyncInit(mapName: "m", lastSyncTimestamp: 1_700_000_000_000, rootHash: 9, bucketHashes: buckets)),
        .syncRespRoot(SyncRespRoot(mapName: "m", rootHash: 4_294_967_295, timestamp: ts)),
        .merkleReqBucket(MerkleReqBucket(mapName: "m", path: "37")),
        .syncRespBuckets(SyncRespBuckets(mapName: "m", path: "3", buckets: buckets)),
        .syncRespLeaf(
            SyncRespLeaf(
                mapName: "m", path: "374",
                records: [SyncLeafRecord(key: "key1", record: lww), SyncLeafRecord(key: "gone", record: LWWRecord(value: nil, timestamp: ts))])),
        .syncResetRequired(SyncResetRequired(mapName: "m", reason: "gc")),
        .gcPrune(GCPrune(olderThan: ts)),
        .clientApplyAck(ClientApplyAck(cursor: 12)),
        .ormapSyncInit(ORMapSyncInit(mapName: "m", rootHash: 1, bucketHashes: buckets, lastSyncTimestamp: 5, claimedEpoch: 3)),
        .ormapSyncRespRoot(ORMapSyncRespRoot(mapName: "m", rootHash: 2, timestamp: ts, coveringEpoch: 4, fullResync: true)),
        .ormapMerkleReqBucket(ORMapMerkleReqBucket(mapName: "m", path: "")),
        .ormapSyncRespBuckets(ORMapSyncRespBuckets(mapName: "m", path: "a", buckets: buckets)),
        .ormapSyncRespLeaf(ORMapSyncRespLeaf(mapName: "m", path: "abc", entries: [orEntry], coveringEpoch: 4)),
        .ormapDiffRequest(ORMapDiffRequest(mapName: "m", keys: ["a", "b"])),
        .ormapDiffResponse(ORMapDiffResponse(mapName: "m", entries: [orEntry], coveringEpoch: 9)),
        .ormapPushDiff(ORMapPushDiff(mapName: "m", entries: [orEntry])),
        .querySub(QuerySub(queryId: "q", mapName: "m", query: try! Query(from: ["where": ["done": false], "limit": 5]), fields: ["title"])),
        .queryUnsub(QueryUnsub(queryId: "q")),
        .queryResp(
            QueryResp(
                queryId: "q", results: [QueryResultItem(key: "k", value: ["a": 1])], nextCursor: "c", hasMore: true,
                cursorStatus: .expired, merkleRootHash: 77, error: "overflow", code: "QUERY_SNAPSHOT_OVERFLOW")),
        .queryUpdate(QueryUpdate(queryId: "q", key: "k", value: .null, changeType: .leave)),
        .querySyncInit(QuerySyncInit(queryId: "q", rootHash: 5)),
        .hybridQuerySubscribe(
            HybridQuerySubscribe(
                subscriptionId: "h", mapName: "m", predicate: ["op": "match", "attribute": "body", "query": "x"],
                where: ["a": 1], sort: [["field": "a", "direction": "asc"]], limit: 3, cursor: "c")),
        .hybridQueryUnsubscribe(HybridQueryUnsubscribe(subscriptionId: "h")),
        .search(Search(requestId: "r", mapName: "m", query: "rust", options: options)),
        .searchResp(
            SearchResp(
                requestId: "r", results: [SearchResult(key: "k", value: "v", score: 0.9, matchedTerms: ["rust"])],
                totalCount: 1, error: "partial")),
        .searchSub(SearchSub(subscriptionId: "s", mapName: "m", query: "q", options: SearchOptions(limit: 3))),
        .searchUpdate(SearchUpdate(subscriptionId: "s", key: "k", value: ["t": 1], score: 1.5, matchedTerms: [], changeType: .update)),
        .searchUnsub(SearchUnsub(subscriptionId: "s")),
        .hybridSearch(
            HybridSearch(
                requestId: "r", mapName: "m", queryText: "q", methods: [.exact, .fullText, .semantic], k: 5,
                queryVector: vector, predicate: ["op": "eq", "attribute": "a", "value": 1], includeValue: true, minScore: 0.1)),
        .hybridSearchResp(
            HybridSearchResp(
                requestId: "r", results: [HybridSearchResult(key: "k", score: 0.3, methodScores: scores, value: 1)],
                searchTimeMs: 1.25, error: "e")),
        .hybridSearchSub(
            HybridSearchSub(
                subscriptionId: "s", mapName: "m", queryText: "q", methods: [.fullText], k: 2, queryVector: vector,
                predicate: nil, includeValue: false, minScore: 0)),
        .hybridSearchUpdate(
            HybridSearchUpdate(subscriptionId: "s", key: "k", score: 0.5, methodScores: scores, value: "v", changeType: .enter)),
        .hybridSearchUnsub(HybridSearchUnsub(subscriptionId: "s")),
        .vectorSearch(
            VectorSearch(
                id: "v", mapName: "m", indexName: "idx", queryVector: vector, k: 4, efSearch: 64,
                options: VectorSearchOptions(includeValue: true, includeVectors: true, minScore: 0.2, filter: ["op": "isNull", "attribute": "x"]))),
        .vectorSearchResp(
            VectorSearchResp(
                id: "v", results: [VectorSearchResult(key: "k", score: 0.99, value: "v", vector: vector)],
                totalCandidates: 100, searchTimeMs: 3, error: "e")),
        .sqlQuery(SQLQuery(sql: "SELECT 1", queryId: "q")),
        .sqlQueryResp(SQLQueryResp(queryId: "q", columns: ["a", "b"], rows: [[1, .null], ["x", 2.5]], error: "e", code: "FEATURE_DISABLED")),
        .topicSub(TopicSub(topic: "news")),
        .topicUnsub(TopicUnsub(topic: "news")),
        .topicPub(TopicPub(topic: "news", data: ["hi": 1])),
        .topicMessage(TopicMessage(topic: "news", data: .null, publisherId: "p", timestamp: 1_700_000_000_000)),
        .lockRequest(LockRequest(requestId: "r", name: "L", ttl: 10_000)),
        .lockRelease(LockRelease(requestId: "r", name: "L", fencingToken: 3)),
        .lockGranted(LockGranted(requestId: "r", name: "L", fencingToken: 3)),
        .lockReleased(LockReleased(requestId: "r", name: "L", success: false)),
        .counterRequest(CounterRequest(name: "c")),
        .counterSync(CounterSync(name: "c", state: CounterState(positive: ["n": 2], negative: ["n": 1], spellings: [.long]))),
        .counterResponse(CounterResponse(name: "c", state: CounterState(positive: ["n": 2]))),
        .counterUpdate(CounterUpdate(name: "c", state: CounterState(positive: [:], negative: ["x": 0.5], spellings: [.short]))),
        .entryProcess(EntryProcess(requestId: "r", mapName: "m", key: "k", processor: EntryProcessor(name: "builtin:increment", code: "x", args: 1))),
        .entryProcessBatch(EntryProcessBatch(requestId: "r", mapName: "m", keys: ["a", "b"], processor: EntryProcessor(name: "n", code: "c"))),
        .entryProcessResponse(EntryProcessResponse(requestId: "r", success: true, result: 1, newValue: 2, error: "e")),
        .entryProcessBatchResponse(
            EntryProcessBatchResponse(
                requestId: "r",
                results: WireDictionary([
                    (key: "a", value: EntryProcessKeyResult(success: true, result: 1, newValue: 2)),
                    (key: "b", value: EntryProcessKeyResult(success: false, error: "not available")),
                ]))),
        .registerResolver(
            RegisterResolver(
                requestId: "r", mapName: "m",
                resolver: ConflictResolverDefinition(name: "n", code: "c", priority: 50, keyPattern: "user-*"))),
        .registerResolverResponse(RegisterResolverResponse(requestId: "r", success: false, error: "e")),
        .unregisterResolver(UnregisterResolver(requestId: "r", mapName: "m", resolverName: "n")),
        .unregisterResolverResponse(UnregisterResolverResponse(requestId: "r", success: true)),
        .listResolvers(ListResolvers(requestId: "r", mapName: "m")),
        .listResolversResponse(
            ListResolversResponse(requestId: "r", resolvers: [ResolverInfo(mapName: "m", name: "n", priority: 1, keyPattern: "*")])),
        .journalSubscribe(JournalSubscribe(requestId: "j", fromSequence: "1", mapName: "m", types: [.put, .delete])),
        .journalUnsubscribe(JournalUnsubscribe(subscriptionId: "j")),
        .journalEventMessage(JournalEventMessage(event: journalEvent)),
        .journalRead(JournalRead(requestId: "j", fromSequence: "1", limit: 100, mapName: "m")),
        .journalReadResponse(JournalReadResponse(requestId: "j", events: [journalEvent], hasMore: true)),
        .partitionMapRequest(PartitionMapRequest(currentVersion: 2)),
        .partitionMap(
            PartitionMap(
                version: 3, partitionCount: 271,
                nodes: [
                    PartitionMapNode(nodeId: "n1", endpoints: NodeEndpoints(websocket: "ws://a", http: "http://a"), status: .active),
                    PartitionMapNode(nodeId: "n2", endpoints: NodeEndpoints(websocket: "ws://b"), status: .suspected),
                ],
                partitions: [PartitionMapEntry(partitionId: 0, ownerNodeId: "n1", backupNodeIds: ["n2"])],
                generatedAt: 1_700_000_000_000)),
        .partitionMapDelta(
            PartitionMapDelta(
                version: 4, previousVersion: 3,
                changes: [PartitionChange(partitionId: 5, previousOwner: "n1", newOwner: "n2", reason: .failover)],
                timestamp: 1_700_000_000_000)),
        .clusterSubRegister(
            ClusterSubRegister(
                subscriptionId: "cs", coordinatorNodeId: "n1", mapName: "m", subscriptionType: .query, searchQuery: "q",
                searchOptions: options, queryPredicate: ["op": "eq", "attribute": "a", "value": 1], querySort: ["a": "asc"])),
        .clusterSubAck(
            ClusterSubAck(
                subscriptionId: "cs", nodeId: "n2", success: true, error: "e",
                initialResults: [ClusterSearchResult(key: "k", value: 1, score: 0.5, matchedTerms: ["a"]), ClusterSearchResult(key: "j", value: 2)],
                totalHits: 2)),
        .clusterSubUpdate(
            ClusterSubUpdate(
                subscriptionId: "cs", sourceNodeId: "n2", key: "k", value: .null, score: 0.1, matchedTerms: ["a"], changeType: .leave,
                timestamp: 1_700_000_000_001)),
        .clusterSubUnregister(ClusterSubUnregister(subscriptionId: "cs")),
        .clusterSearchReq(ClusterSearchReq(requestId: "r", mapName: "m", query: "q", options: options, timeoutMs: 5000)),
        .clusterSearchResp(
            ClusterSearchResp(
                requestId: "r", nodeId: "n", results: [ClusterSearchResult(key: "k", value: "v", score: 1)], totalHits: 1,
                executionTimeMs: 2.5, error: "e")),
        .clusterSearchSubscribe(ClusterSearchSubscribe(subscriptionId: "s", mapName: "m", query: "q", options: options)),
        .clusterSearchUnsubscribe(ClusterSearchUnsubscribe(subscriptionId: "s")),
        .clusterSearchUpdate(
            ClusterSearchUpdate(subscriptionId: "s", nodeId: "n", key: "k", value: 1, score: 0.5, matchedTerms: ["q"], changeType: .enter)),
        .httpSyncRequest(
            HTTPSyncRequest(
                clientId: "c", clientHlc: ts, operations: [op], syncMaps: [HTTPSyncMap(mapName: "m", lastSyncTimestamp: .zero)],
                queries: [HTTPSyncQuery(queryId: "q", mapName: "m", filter: ["a": 1], limit: 10, offset: 5, cursor: "c")],
                searches: [HTTPSyncSearch(searchId: "s", mapName: "m", query: "q", options: options)])),
        .httpSyncResponse(
            HTTPSyncResponse(
                serverHlc: ts, ack: HTTPSyncAck(lastId: "7", results: [OpResult(opId: "7", success: true, achievedLevel: .memory)]),
                deltas: [
                    HTTPSyncDelta(
                        mapName: "m", records: [HTTPSyncDeltaRecord(key: "k", record: lww, eventType: .put)], serverSyncTimestamp: ts)
                ],
                queryResults: [HTTPSyncQueryResult(queryId: "q", results: [["key": "k"]], hasMore: false, nextCursor: "n")],
                searchResults: [HTTPSyncSearchResult(searchId: "s", results: [], totalCount: 0)],
                errors: [HTTPSyncError(code: 500, message: "m", context: "c")])),
    ]
}
