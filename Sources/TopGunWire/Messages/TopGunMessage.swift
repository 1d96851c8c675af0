import TopGunCore

/// Every message of the TopGun protocol (protocol.md §6.5), plus the two HTTP sync bodies
/// (§7.1), which travel without a `type`.
public enum TopGunMessage: Sendable, Equatable {
    // Session and control (§6.5.1)
    case authRequired(AuthRequired)
    case auth(Auth)
    case authAck(AuthAck)
    case authFail(AuthFail)
    case deviceHello(DeviceHello)
    case deviceAck(DeviceAck)
    case ping(Ping)
    case pong(Pong)
    case errorMessage(ErrorMessage)
    // Writes, acknowledgements, server events (§6.5.2)
    case clientOp(ClientOpMessage)
    case opBatch(OpBatch)
    case opAck(OpAck)
    case opRejected(OpRejected)
    case serverEvent(ServerEvent)
    case serverBatchEvent(ServerBatchEvent)
    case mergeRejected(MergeRejected)
    case batch(Batch)
    // LWW Merkle sync and GC (§6.5.3)
    case syncInit(SyncInit)
    case syncRespRoot(SyncRespRoot)
    case merkleReqBucket(MerkleReqBucket)
    case syncRespBuckets(SyncRespBuckets)
    case syncRespLeaf(SyncRespLeaf)
    case syncResetRequired(SyncResetRequired)
    case gcPrune(GCPrune)
    case clientApplyAck(ClientApplyAck)
    // OR-Map Merkle sync (§6.5.4)
    case ormapSyncInit(ORMapSyncInit)
    case ormapSyncRespRoot(ORMapSyncRespRoot)
    case ormapMerkleReqBucket(ORMapMerkleReqBucket)
    case ormapSyncRespBuckets(ORMapSyncRespBuckets)
    case ormapSyncRespLeaf(ORMapSyncRespLeaf)
    case ormapDiffRequest(ORMapDiffRequest)
    case ormapDiffResponse(ORMapDiffResponse)
    case ormapPushDiff(ORMapPushDiff)
    // Queries (§6.5.5)
    case querySub(QuerySub)
    case queryUnsub(QueryUnsub)
    case queryResp(QueryResp)
    case queryUpdate(QueryUpdate)
    case querySyncInit(QuerySyncInit)
    case hybridQuerySubscribe(HybridQuerySubscribe)
    case hybridQueryUnsubscribe(HybridQueryUnsubscribe)
    // Search, hybrid, vector, SQL (§6.5.6)
    case search(Search)
    case searchResp(SearchResp)
    case searchSub(SearchSub)
    case searchUpdate(SearchUpdate)
    case searchUnsub(SearchUnsub)
    case hybridSearch(HybridSearch)
    case hybridSearchResp(HybridSearchResp)
    case hybridSearchSub(HybridSearchSub)
    case hybridSearchUpdate(HybridSearchUpdate)
    case hybridSearchUnsub(HybridSearchUnsub)
    case vectorSearch(VectorSearch)
    case vectorSearchResp(VectorSearchResp)
    case sqlQuery(SQLQuery)
    case sqlQueryResp(SQLQueryResp)
    // Topics (§6.5.7)
    case topicSub(TopicSub)
    case topicUnsub(TopicUnsub)
    case topicPub(TopicPub)
    case topicMessage(TopicMessage)
    // Locks (§6.5.7)
    case lockRequest(LockRequest)
    case lockRelease(LockRelease)
    case lockGranted(LockGranted)
    case lockReleased(LockReleased)
    // Counters (§6.5.7)
    case counterRequest(CounterRequest)
    case counterSync(CounterSync)
    case counterResponse(CounterResponse)
    case counterUpdate(CounterUpdate)
    // Entry processors and conflict resolvers (§6.5.7)
    case entryProcess(EntryProcess)
    case entryProcessBatch(EntryProcessBatch)
    case entryProcessResponse(EntryProcessResponse)
    case entryProcessBatchResponse(EntryProcessBatchResponse)
    case registerResolver(RegisterResolver)
    case registerResolverResponse(RegisterResolverResponse)
    case unregisterResolver(UnregisterResolver)
    case unregisterResolverResponse(UnregisterResolverResponse)
    case listResolvers(ListResolvers)
    case listResolversResponse(ListResolversResponse)
    // Event journal (§6.5.7)
    case journalSubscribe(JournalSubscribe)
    case journalUnsubscribe(JournalUnsubscribe)
    case journalEventMessage(JournalEventMessage)
    case journalRead(JournalRead)
    case journalReadResponse(JournalReadResponse)
    // Partition map (§5, §6.5.8)
    case partitionMapRequest(PartitionMapRequest)
    case partitionMap(PartitionMap)
    case partitionMapDelta(PartitionMapDelta)
    // Server to server (§6.5.8)
    case clusterSubRegister(ClusterSubRegister)
    case clusterSubAck(ClusterSubAck)
    case clusterSubUpdate(ClusterSubUpdate)
    case clusterSubUnregister(ClusterSubUnregister)
    case clusterSearchReq(ClusterSearchReq)
    case clusterSearchResp(ClusterSearchResp)
    case clusterSearchSubscribe(ClusterSearchSubscribe)
    case clusterSearchUnsubscribe(ClusterSearchUnsubscribe)
    case clusterSearchUpdate(ClusterSearchUpdate)
    // HTTP sync bodies, without `type` (§7.1)
    case httpSyncRequest(HTTPSyncRequest)
    case httpSyncResponse(HTTPSyncResponse)

    /// The body, whatever its type.
    public var body: any MessageBody {
        switch self {
        case .authRequired(let m): return m
        case .auth(let m): return m
        case .authAck(let m): return m
        case .authFail(let m): return m
        case .deviceHello(let m): return m
        case .deviceAck(let m): return m
        case .ping(let m): return m
        case .pong(let m): return m
        case .errorMessage(let m): return m
        case .clientOp(let m): return m
        case .opBatch(let m): return m
        case .opAck(let m): return m
        case .opRejected(let m): return m
        case .serverEvent(let m): return m
        case .serverBatchEvent(let m): return m
        case .mergeRejected(let m): return m
        case .batch(let m): return m
        case .syncInit(let m): return m
        case .syncRespRoot(let m): return m
        case .merkleReqBucket(let m): return m
        case .syncRespBuckets(let m): return m
        case .syncRespLeaf(let m): return m
        case .syncResetRequired(let m): return m
        case .gcPrune(let m): return m
        case .clientApplyAck(let m): return m
        case .ormapSyncInit(let m): return m
        case .ormapSyncRespRoot(let m): return m
        case .ormapMerkleReqBucket(let m): return m
        case .ormapSyncRespBuckets(let m): return m
        case .ormapSyncRespLeaf(let m): return m
        case .ormapDiffRequest(let m): return m
        case .ormapDiffResponse(let m): return m
        case .ormapPushDiff(let m): return m
        case .querySub(let m): return m
        case .queryUnsub(let m): return m
        case .queryResp(let m): return m
        case .queryUpdate(let m): return m
        case .querySyncInit(let m): return m
        case .hybridQuerySubscribe(let m): return m
        case .hybridQueryUnsubscribe(let m): return m
        case .search(let m): return m
        case .searchResp(let m): return m
        case .searchSub(let m): return m
        case .searchUpdate(let m): return m
        case .searchUnsub(let m): return m
        case .hybridSearch(let m): return m
        case .hybridSearchResp(let m): return m
        case .hybridSearchSub(let m): return m
        case .hybridSearchUpdate(let m): return m
        case .hybridSearchUnsub(let m): return m
        case .vectorSearch(let m): return m
        case .vectorSearchResp(let m): return m
        case .sqlQuery(let m): return m
        case .sqlQueryResp(let m): return m
        case .topicSub(let m): return m
        case .topicUnsub(let m): return m
        case .topicPub(let m): return m
        case .topicMessage(let m): return m
        case .lockRequest(let m): return m
        case .lockRelease(let m): return m
        case .lockGranted(let m): return m
        case .lockReleased(let m): return m
        case .counterRequest(let m): return m
        case .counterSync(let m): return m
        case .counterResponse(let m): return m
        case .counterUpdate(let m): return m
        case .entryProcess(let m): return m
        case .entryProcessBatch(let m): return m
        case .entryProcessResponse(let m): return m
        case .entryProcessBatchResponse(let m): return m
        case .registerResolver(let m): return m
        case .registerResolverResponse(let m): return m
        case .unregisterResolver(let m): return m
        case .unregisterResolverResponse(let m): return m
        case .listResolvers(let m): return m
        case .listResolversResponse(let m): return m
        case .journalSubscribe(let m): return m
        case .journalUnsubscribe(let m): return m
        case .journalEventMessage(let m): return m
        case .journalRead(let m): return m
        case .journalReadResponse(let m): return m
        case .partitionMapRequest(let m): return m
        case .partitionMap(let m): return m
        case .partitionMapDelta(let m): return m
        case .clusterSubRegister(let m): return m
        case .clusterSubAck(let m): return m
        case .clusterSubUpdate(let m): return m
        case .clusterSubUnregister(let m): return m
        case .clusterSearchReq(let m): return m
        case .clusterSearchResp(let m): return m
        case .clusterSearchSubscribe(let m): return m
        case .clusterSearchUnsubscribe(let m): return m
        case .clusterSearchUpdate(let m): return m
        case .httpSyncRequest(let m): return m
        case .httpSyncResponse(let m): return m
        }
    }

    /// The value of `type` on the wire (empty for the HTTP sync bodies).
    public var type: String { Swift.type(of: body).type }

    /// Every body type; the decoder builds its table from this list.
    static let bodyTypes: [any MessageBody.Type] = [
        AuthRequired.self, Auth.self, AuthAck.self, AuthFail.self, DeviceHello.self, DeviceAck.self,
        Ping.self, Pong.self, ErrorMessage.self,
        ClientOpMessage.self, OpBatch.self, OpAck.self, OpRejected.self, ServerEvent.self,
        ServerBatchEvent.self, MergeRejected.self, Batch.self,
        SyncInit.self, SyncRespRoot.self, MerkleReqBucket.self, SyncRespBuckets.self, SyncRespLeaf.self,
        SyncResetRequired.self, GCPrune.self, ClientApplyAck.self,
        ORMapSyncInit.self, ORMapSyncRespRoot.self, ORMapMerkleReqBucket.self, ORMapSyncRespBuckets.self,
        ORMapSyncRespLeaf.self, ORMapDiffRequest.self, ORMapDiffResponse.self, ORMapPushDiff.self,
        QuerySub.self, QueryUnsub.self, QueryResp.self, QueryUpdate.self, QuerySyncInit.self,
        HybridQuerySubscribe.self, HybridQueryUnsubscribe.self,
        Search.self, SearchResp.self, SearchSub.self, SearchUpdate.self, SearchUnsub.self, HybridSearch.self,
        HybridSearchResp.self, HybridSearchSub.self, HybridSearchUpdate.self, HybridSearchUnsub.self,
        VectorSearch.self, VectorSearchResp.self, SQLQuery.self, SQLQueryResp.self,
        TopicSub.self, TopicUnsub.self, TopicPub.self, TopicMessage.self,
        LockRequest.self, LockRelease.self, LockGranted.self, LockReleased.self,
        CounterRequest.self, CounterSync.self, CounterResponse.self, CounterUpdate.self,
        EntryProcess.self, EntryProcessBatch.self, EntryProcessResponse.self, EntryProcessBatchResponse.self,
        RegisterResolver.self, RegisterResolverResponse.self, UnregisterResolver.self,
        UnregisterResolverResponse.self, ListResolvers.self, ListResolversResponse.self,
        JournalSubscribe.self, JournalUnsubscribe.self, JournalEventMessage.self, JournalRead.self,
        JournalReadResponse.self,
        PartitionMapRequest.self, PartitionMap.self, PartitionMapDelta.self,
        ClusterSubRegister.self, ClusterSubAck.self, ClusterSubUpdate.self, ClusterSubUnregister.self,
        ClusterSearchReq.self, ClusterSearchResp.self, ClusterSearchSubscribe.self,
        ClusterSearchUnsubscribe.self, ClusterSearchUpdate.self,
        HTTPSyncRequest.self, HTTPSyncResponse.self,
    ]

    init(_ body: any MessageBody) {
        switch body {
        case let m as AuthRequired: self = .authRequired(m)
        case let m as Auth: self = .auth(m)
        case let m as AuthAck: self = .authAck(m)
        case let m as AuthFail: self = .authFail(m)
        case let m as DeviceHello: self = .deviceHello(m)
        case let m as DeviceAck: self = .deviceAck(m)
        case let m as Ping: self = .ping(m)
        case let m as Pong: self = .pong(m)
        case let m as ErrorMessage: self = .errorMessage(m)
        case let m as ClientOpMessage: self = .clientOp(m)
        case let m as OpBatch: self = .opBatch(m)
        case let m as OpAck: self = .opAck(m)
        case let m as OpRejected: self = .opRejected(m)
        case let m as ServerEvent: self = .serverEvent(m)
        case let m as ServerBatchEvent: self = .serverBatchEvent(m)
        case let m as MergeRejected: self = .mergeRejected(m)
        case let m as Batch: self = .batch(m)
        case let m as SyncInit: self = .syncInit(m)
        case let m as SyncRespRoot: self = .syncRespRoot(m)
        case let m as MerkleReqBucket: self = .merkleReqBucket(m)
        case let m as SyncRespBuckets: self = .syncRespBuckets(m)
        case let m as SyncRespLeaf: self = .syncRespLeaf(m)
        case let m as SyncResetRequired: self = .syncResetRequired(m)
        case let m as GCPrune: self = .gcPrune(m)
        case let m as ClientApplyAck: self = .clientApplyAck(m)
        case let m as ORMapSyncInit: self = .ormapSyncInit(m)
        case let m as ORMapSyncRespRoot: self = .ormapSyncRespRoot(m)
        case let m as ORMapMerkleReqBucket: self = .ormapMerkleReqBucket(m)
        case let m as ORMapSyncRespBuckets: self = .ormapSyncRespBuckets(m)
        case let m as ORMapSyncRespLeaf: self = .ormapSyncRespLeaf(m)
        case let m as ORMapDiffRequest: self = .ormapDiffRequest(m)
        case let m as ORMapDiffResponse: self = .ormapDiffResponse(m)
        case let m as ORMapPushDiff: self = .ormapPushDiff(m)
        case let m as QuerySub: self = .querySub(m)
        case let m as QueryUnsub: self = .queryUnsub(m)
        case let m as QueryResp: self = .queryResp(m)
        case let m as QueryUpdate: self = .queryUpdate(m)
        case let m as QuerySyncInit: self = .querySyncInit(m)
        case let m as HybridQuerySubscribe: self = .hybridQuerySubscribe(m)
        case let m as HybridQueryUnsubscribe: self = .hybridQueryUnsubscribe(m)
        case let m as Search: self = .search(m)
        case let m as SearchResp: self = .searchResp(m)
        case let m as SearchSub: self = .searchSub(m)
        case let m as SearchUpdate: self = .searchUpdate(m)
        case let m as SearchUnsub: self = .searchUnsub(m)
        case let m as HybridSearch: self = .hybridSearch(m)
        case let m as HybridSearchResp: self = .hybridSearchResp(m)
        case let m as HybridSearchSub: self = .hybridSearchSub(m)
        case let m as HybridSearchUpdate: self = .hybridSearchUpdate(m)
        case let m as HybridSearchUnsub: self = .hybridSearchUnsub(m)
        case let m as VectorSearch: self = .vectorSearch(m)
        case let m as VectorSearchResp: self = .vectorSearchResp(m)
        case let m as SQLQuery: self = .sqlQuery(m)
        case let m as SQLQueryResp: self = .sqlQueryResp(m)
        case let m as TopicSub: self = .topicSub(m)
        case let m as TopicUnsub: self = .topicUnsub(m)
        case let m as TopicPub: self = .topicPub(m)
        case let m as TopicMessage: self = .topicMessage(m)
        case let m as LockRequest: self = .lockRequest(m)
        case let m as LockRelease: self = .lockRelease(m)
        case let m as LockGranted: self = .lockGranted(m)
        case let m as LockReleased: self = .lockReleased(m)
        case let m as CounterRequest: self = .counterRequest(m)
        case let m as CounterSync: self = .counterSync(m)
        case let m as CounterResponse: self = .counterResponse(m)
        case let m as CounterUpdate: self = .counterUpdate(m)
        case let m as EntryProcess: self = .entryProcess(m)
        case let m as EntryProcessBatch: self = .entryProcessBatch(m)
        case let m as EntryProcessResponse: self = .entryProcessResponse(m)
        case let m as EntryProcessBatchResponse: self = .entryProcessBatchResponse(m)
        case let m as RegisterResolver: self = .registerResolver(m)
        case let m as RegisterResolverResponse: self = .registerResolverResponse(m)
        case let m as UnregisterResolver: self = .unregisterResolver(m)
        case let m as UnregisterResolverResponse: self = .unregisterResolverResponse(m)
        case let m as ListResolvers: self = .listResolvers(m)
        case let m as ListResolversResponse: self = .listResolversResponse(m)
        case let m as JournalSubscribe: self = .journalSubscribe(m)
        case let m as JournalUnsubscribe: self = .journalUnsubscribe(m)
        case let m as JournalEventMessage: self = .journalEventMessage(m)
        case let m as JournalRead: self = .journalRead(m)
        case let m as JournalReadResponse: self = .journalReadResponse(m)
        case let m as PartitionMapRequest: self = .partitionMapRequest(m)
        case let m as PartitionMap: self = .partitionMap(m)
        case let m as PartitionMapDelta: self = .partitionMapDelta(m)
        case let m as ClusterSubRegister: self = .clusterSubRegister(m)
        case let m as ClusterSubAck: self = .clusterSubAck(m)
        case let m as ClusterSubUpdate: self = .clusterSubUpdate(m)
        case let m as ClusterSubUnregister: self = .clusterSubUnregister(m)
        case let m as ClusterSearchReq: self = .clusterSearchReq(m)
        case let m as ClusterSearchResp: self = .clusterSearchResp(m)
        case let m as ClusterSearchSubscribe: self = .clusterSearchSubscribe(m)
        case let m as ClusterSearchUnsubscribe: self = .clusterSearchUnsubscribe(m)
        case let m as ClusterSearchUpdate: self = .clusterSearchUpdate(m)
        case let m as HTTPSyncRequest: self = .httpSyncRequest(m)
        case let m as HTTPSyncResponse: self = .httpSyncResponse(m)
        default: preconditionFailure("\(Swift.type(of: body)) is listed in bodyTypes but has no case")
        }
    }
}
