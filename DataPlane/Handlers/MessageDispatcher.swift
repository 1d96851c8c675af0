import Logging
import Tenancy
import TopGunCore
import TopGunWire

/// Routes an authenticated message to the handler of its domain (protocol.md §6.6).
public struct MessageDispatcher: Sendable {
    let services: DataPlaneServices
    let writes: WritePath

    public init(services: DataPlaneServices) {
        self.services = services
        self.writes = WritePath(services: services)
    }

    /// Not inlined into the connection's loop on purpose: the loop's async frame lives as long
    /// as the connection, and every local of an inlined handler would live in it too.
    @inline(never)
    public func handle(_ message: TopGunMessage, context: RequestContext, session: inout SessionState) async {
        let out = session.outbound
        switch message {
        // Writes
        case .opBatch(let batch):
            await handleWrites(batch.ops, batchConcern: batch.writeConcern, timeout: batch.timeout, context: context, session: &session)
        case .clientOp(let single):
            await handleWrites([single.op], batchConcern: nil, timeout: single.op.timeout, context: context, session: &session)

        // LWW Merkle sync
        case .syncInit(let request):
            await handleSyncInit(request, context: context, out: out)
        case .merkleReqBucket(let request):
            let store = services.maps.existingStore(tenant: context.tenant, name: request.mapName)
            if let store {
                out.send(await store.lwwBucket(path: request.path))
            } else {
                out.send(.syncRespBuckets(SyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary([]))))
            }
        case .clientApplyAck, .querySyncInit:
            break  // no tombstone GC yet, nothing to confirm (protocol.md §6.6.3b)

        // OR-Map Merkle sync
        case .ormapSyncInit(let request):
            let store = services.maps.existingStore(tenant: context.tenant, name: request.mapName)
            if let store, await store.kind == .lww {
                out.send(.errorMessage(.make(.badRequest, "map '\(request.mapName)' is an LWW map", details: ["mapName": .string(request.mapName)])))
                return
            }
            let root = await store?.orRootHash() ?? 0
            out.send(.ormapSyncRespRoot(ORMapSyncRespRoot(
                mapName: request.mapName, rootHash: root, timestamp: services.clocks.clock(for: context.tenant).now())))
        case .ormapMerkleReqBucket(let request):
            if let store = services.maps.existingStore(tenant: context.tenant, name: request.mapName) {
                out.send(await store.orBucket(path: request.path))
            } else {
                out.send(.ormapSyncRespBuckets(ORMapSyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary([]))))
            }
        case .ormapDiffRequest(let request):
            let entries = await services.maps.existingStore(tenant: context.tenant, name: request.mapName)?.orEntries(keys: request.keys)
            out.send(.ormapDiffResponse(ORMapDiffResponse(mapName: request.mapName, entries: entries ?? [])))
        case .ormapPushDiff(let push):
            await handlePushDiff(push, context: context, out: out)

        // Live queries
        case .querySub(let sub):
            // A re-subscription under the same id replaces the query and counts once.
            if let refusal = await services.policies.acquireSubscription(context.tenant, session: out.id, key: "query:" + sub.queryId) {
                return sendRefusal(refusal, out)
            }
            let id = MapDirectory.MapID(tenant: context.tenant, name: sub.mapName)
            let store = services.maps.store(tenant: context.tenant, name: sub.mapName)
            let pageBytes = services.configuration.resultPageBytes
            let morePages = await store.subscribe(sub, outbound: out, nowMillis: services.clock.nowMillis(), pageBytes: pageBytes)
            session.touchedMaps[id] = store
            session.queryMaps[sub.queryId] = id
            if morePages { session.sendRemainingPages(of: sub.queryId, from: store, pageBytes: pageBytes) }
        case .queryUnsub(let unsub):
            if let id = session.queryMaps.removeValue(forKey: unsub.queryId) {
                services.policies.releaseSubscription(session: out.id, key: "query:" + unsub.queryId)
                if let store = session.touchedMaps[id] { await store.unsubscribe(queryId: unsub.queryId, session: out.id) }
            }

        // Topics
        case .topicSub(let sub):
            guard TopicRegistry.isValidName(sub.topic) else { return sendInvalidTopic(sub.topic, out) }
            if let refusal = await services.policies.acquireSubscription(context.tenant, session: out.id, key: "topic:" + sub.topic) {
                return sendRefusal(refusal, out)
            }
            if await services.topics.subscribe(sub.topic, tenant: context.tenant, outbound: out) == .tooManySubscriptions {
                services.policies.releaseSubscription(session: out.id, key: "topic:" + sub.topic)
                out.send(.errorMessage(.make(.rateLimited, "at most \(TopicRegistry.maxSubscriptionsPerSession) topic subscriptions per connection", details: ["quota": "topicSubscriptions", "retryAfterMs": 0])))
            }
        case .topicUnsub(let unsub):
            services.policies.releaseSubscription(session: out.id, key: "topic:" + unsub.topic)
            await services.topics.unsubscribe(unsub.topic, tenant: context.tenant, session: out.id)
        case .topicPub(let pub):
            guard TopicRegistry.isValidName(pub.topic) else { return sendInvalidTopic(pub.topic, out) }
            await services.topics.publish(pub.topic, data: pub.data, tenant: context.tenant, publisher: out.id, nowMillis: services.clock.nowMillis())

        // Locks
        case .lockRequest(let request):
            guard (1...256).contains(request.name.utf8.count) else { return sendInvalidName("lock", request.name, out) }
            await services.locks.request(request, tenant: context.tenant, outbound: out)
        case .lockRelease(let release):
            await services.locks.release(release, tenant: context.tenant, outbound: out)

        // Counters
        case .counterRequest(let request):
            guard (1...256).contains(request.name.utf8.count) else { return sendInvalidName("counter", request.name, out) }
            out.send(.counterResponse(await services.counters.request(request.name, tenant: context.tenant, outbound: out)))
        case .counterSync(let sync):
            guard (1...256).contains(sync.name.utf8.count) else { return sendInvalidName("counter", sync.name, out) }
            // A counter merged into a dropped partition would be stored as if it had no past.
            let partition = PartitionFunction.partition(forKey: sync.name, tenantID: context.tenant.rawValue)
            if services.maps.unloaded.contains(partition) { return sendUnavailable(WritePath.notLoaded(partition), out) }
            if let record = await services.counters.sync(sync.name, state: sync.state, tenant: context.tenant, outbound: out) {
                _ = await services.durability.enqueue([record])
            }

        // Event journal
        case .journalSubscribe(let request):
            var from: UInt64?
            if let text = request.fromSequence {
                guard let parsed = UInt64(text) else { return sendBadSequence(text, out) }
                from = parsed
            }
            services.journal.subscribe(
                tenant: context.tenant, subscriptionId: request.requestId, fromSequence: from, mapName: request.mapName,
                types: request.types, outbound: out)
        case .journalUnsubscribe(let request):
            services.journal.unsubscribe(tenant: context.tenant, subscriptionId: request.subscriptionId, session: out.id)
        case .journalRead(let request):
            guard let from = UInt64(request.fromSequence) else { return sendBadSequence(request.fromSequence, out) }
            let limit = Int(min(max(request.limit ?? 100, 1), 10_000))
            let (events, hasMore) = services.journal.read(tenant: context.tenant, fromSequence: from, limit: limit, mapName: request.mapName)
            out.send(.journalReadResponse(JournalReadResponse(requestId: request.requestId, events: events, hasMore: hasMore)))

        // Partition map
        case .partitionMapRequest(let request):
            let map = partitionMap(for: context.tenant)
            if (request.currentVersion ?? -1) < map.version { out.send(.partitionMap(map)) }

        // Features not built: answer with the reply type the client waits for.
        case .search(let request):
            out.send(.searchResp(SearchResp(requestId: request.requestId, results: [], totalCount: 0, error: Unsupported.search)))
        case .searchSub(let sub):
            out.send(.searchResp(SearchResp(requestId: sub.subscriptionId, results: [], totalCount: 0, error: Unsupported.search)))
        case .searchUnsub, .hybridSearchUnsub:
            break
        case .hybridSearch(let request):
            out.send(.hybridSearchResp(HybridSearchResp(requestId: request.requestId, results: [], searchTimeMs: 0, error: Unsupported.hybridSearch)))
        case .hybridSearchSub(let sub):
            out.send(.hybridSearchResp(HybridSearchResp(requestId: sub.subscriptionId, results: [], searchTimeMs: 0, error: Unsupported.hybridSearch)))
        case .vectorSearch(let request):
            out.send(.vectorSearchResp(VectorSearchResp(id: request.id, results: [], totalCandidates: 0, searchTimeMs: 0, error: Unsupported.vectorSearch)))
        case .sqlQuery(let query):
            out.send(.sqlQueryResp(SQLQueryResp(queryId: query.queryId, columns: [], rows: [], error: Unsupported.sql, code: "FEATURE_DISABLED")))
        case .entryProcess(let request):
            out.send(.entryProcessResponse(EntryProcessResponse(requestId: request.requestId, success: false, error: Unsupported.entryProcessors)))
        case .entryProcessBatch(let request):
            let results = request.keys.map { (key: $0, value: EntryProcessKeyResult(success: false, error: Unsupported.entryProcessors)) }
            out.send(.entryProcessBatchResponse(EntryProcessBatchResponse(requestId: request.requestId, results: WireDictionary(results))))
        case .registerResolver(let request):
            out.send(.registerResolverResponse(RegisterResolverResponse(requestId: request.requestId, success: false, error: Unsupported.resolvers)))
        case .unregisterResolver(let request):
            out.send(.unregisterResolverResponse(UnregisterResolverResponse(requestId: request.requestId, success: false, error: Unsupported.resolvers)))
        case .listResolvers(let request):
            out.send(.listResolversResponse(ListResolversResponse(requestId: request.requestId, resolvers: [])))
        case .hybridQuerySubscribe:
            out.send(.errorMessage(.make(.featureUnavailable, "hybrid live queries are not available on this server", details: ["feature": "hybridQuery"])))
        case .hybridQueryUnsubscribe:
            break

        // Session messages the handshake already handled.
        case .auth, .deviceHello, .ping:
            break

        // Messages only servers send.
        default:
            services.metrics.error(code: WireErrorCode.badRequest.rawValue)
            out.send(.errorMessage(.make(.badRequest, "\(message.type) is sent by servers, not clients", details: ["field": "type"])))
        }
    }

    // MARK: - Writes

    private func handleWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, timeout: Double?, context: RequestContext, session: inout SessionState) async {
        let started = ContinuousClock.now
        if ops.isEmpty {
            session.acknowledge(PendingAck(ticket: nil, ack: .opAck(OpAck(lastId: "unknown", achievedLevel: batchConcern ?? .persisted)), timeout: .zero))
            return
        }
        let outcome = await writes.apply(ops, batchConcern: batchConcern, context: context, writer: session.outbound.id)
        if let refusal = outcome.refusal {
            session.outbound.send(.errorMessage(refusal))
            return
        }
        for rejection in outcome.rejections { session.outbound.send(.opRejected(rejection)) }
        let wait = timeout.map { Duration.milliseconds(Int64(max(0, min($0, 600_000)))) } ?? services.configuration.persistTimeout
        session.acknowledge(PendingAck(ticket: outcome.ticket, ack: .opAck(outcome.ack), timeout: wait))
        let elapsed = ContinuousClock.now - started
        services.metrics.opBatchLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }

    private func handlePushDiff(_ push: ORMapPushDiff, context: RequestContext, out: SessionOutbound) async {
        // The clock-drift rule holds here as for ops: a record (or a removed tag) stamped too
        // far ahead refuses the push.
        let latestMillis = WritePath.latestAcceptedMillis(nowMillis: services.clock.nowMillis(), maxDrift: services.configuration.maxClockDrift)
        for entry in push.entries {
            let ahead = entry.records.first { $0.timestamp.millis > latestMillis }?.timestamp.millis
                ?? entry.tombstones.lazy.compactMap { Timestamp($0)?.millis }.first { $0 > latestMillis }
            if let ahead {
                services.metrics.error(code: WireErrorCode.badRequest.rawValue)
                out.send(.errorMessage(.make(
                    .badRequest, "timestamp \(ahead) of key '\(entry.key)' is further ahead of the server's clock than the allowed drift",
                    details: ["mapName": .string(push.mapName), "field": "timestamp"])))
                return
            }
        }
        // The values a client pushes after being offline are writes too: the map's schema
        // applies (tombstones are never checked). Strict refuses the whole push.
        if let policy = await services.policies.schema(context.tenant, map: push.mapName) {
            for entry in push.entries {
                for record in entry.records {
                    guard let violation = policy.schema.validate(record.value) else { continue }
                    services.metrics.schemaViolation(mode: policy.enforcement.rawValue)
                    guard policy.enforcement == .strict else { continue }
                    out.send(.errorMessage(.make(
                        .schemaViolation, "value of key '\(entry.key)' violates schema version \(policy.version) of map '\(push.mapName)': \(violation.message)",
                        details: ["mapName": .string(push.mapName), "path": .string(violation.pointer), "schemaVersion": .int(Int64(policy.version))])))
                    return
                }
            }
        }
        // Routed entry by entry, as ops are: entries of partitions owned elsewhere go to their
        // owners first; nothing is merged here unless every owner took its share.
        var entries = push.entries
        let router = services.partitionTable.router
        if !router.ownsEverything || !services.maps.unloaded.isEmpty {
            var remote: [NodeID: [ORMapEntry]] = [:]
            entries = []
            for entry in push.entries {
                let partition = PartitionFunction.partition(forKey: entry.key, tenantID: context.tenant.rawValue)
                if case .remote(let owner) = router.route(partition: partition) {
                    remote[owner, default: []].append(entry)
                } else if services.maps.unloaded.contains(partition) {
                    return sendUnavailable(WritePath.notLoaded(partition), out)
                } else {
                    entries.append(entry)
                }
            }
            for (owner, share) in remote.sorted(by: { $0.key < $1.key }) {
                guard let peers = services.peers, let outcome = try? await peers.pushORMapEntries(share, mapName: push.mapName, on: owner, context: context) else {
                    return sendUnavailable(WritePath.unreachable(owner), out)
                }
                if !outcome.success {
                    out.send(.errorMessage(.make(outcome.code ?? .badRequest, outcome.error ?? "rejected", details: ["mapName": .string(push.mapName)])))
                    return
                }
            }
        }
        // An empty push creates no map.
        guard !entries.isEmpty else { return }
        let store = services.maps.store(tenant: context.tenant, name: push.mapName)
        await services.mapKinds.settle(store, proposing: .orMap)
        let result = await store.pushDiff(entries, writer: out.id, nowMillis: services.clock.nowMillis())
        if let rejected = result.outcomes.first(where: { !$0.success }) {
            out.send(.errorMessage(.make(rejected.code ?? .badRequest, rejected.error ?? "rejected", details: ["mapName": .string(push.mapName)])))
            return
        }
        services.journal.append(result.journal, mapName: push.mapName, tenant: context.tenant)
        if !result.changedRecords.isEmpty { _ = await services.durability.enqueue(result.changedRecords) }
    }

    // MARK: - Sync

    private func handleSyncInit(_ request: SyncInit, context: RequestContext, out: SessionOutbound) async {
        let store = services.maps.existingStore(tenant: context.tenant, name: request.mapName)
        if let store, await store.kind == .orMap {
            out.send(.errorMessage(.make(.badRequest, "map '\(request.mapName)' is an OR-Map; use ORMAP_SYNC_INIT", details: ["mapName": .string(request.mapName)])))
            return
        }
        let root = await store?.lwwRootHash() ?? 0
        out.send(.syncRespRoot(SyncRespRoot(mapName: request.mapName, rootHash: root, timestamp: services.clocks.clock(for: context.tenant).now())))
    }

    // MARK: - Partition map

    /// The map a tenant's client routes by, built from the current partition table: its
    /// entry `p` names the owner and backups of server partition `(p + offset(tenant)) % 271`
    /// (design.md §3 step 4), so an unmodified client computing `fnv1a(key) % 271` reaches the
    /// owner. Its version is the table's.
    func partitionMap(for tenant: TenantID) -> PartitionMap {
        Self.partitionMap(
            table: services.partitionTable.table, tenant: tenant, localNode: services.partitionTable.localNode,
            localEndpoints: NodeEndpoints(websocket: services.endpoints.websocket, http: services.endpoints.http),
            generatedAt: services.clock.nowMillis())
    }

    /// `PARTITION_MAP` for `tenant` from `table`; the local node's endpoints are the bound
    /// ones when the table does not know them yet.
    static func partitionMap(
        table: PartitionTable, tenant: TenantID, localNode: NodeID, localEndpoints: NodeEndpoints, generatedAt: Int64
    ) -> PartitionMap {
        let nodes = table.members.map { member in
            let known = NodeEndpoints(websocket: member.websocketURL, http: member.httpURL)
            let endpoints = member.id == localNode && member.websocketURL.isEmpty ? localEndpoints : known
            return PartitionMapNode(nodeId: member.id.rawValue, endpoints: endpoints, status: .active)
        }
        let partitions = (0..<PartitionFunction.partitionCount).map { clientPartition in
            let serverPartition = PartitionFunction.serverPartition(forClientPartition: clientPartition, tenantID: tenant.rawValue)
            let assignment = table.assignment(of: serverPartition)
            return PartitionMapEntry(
                partitionId: Int64(clientPartition), ownerNodeId: assignment.owner.rawValue, backupNodeIds: assignment.backups.map(\.rawValue))
        }
        return PartitionMap(
            version: table.version, partitionCount: Int64(PartitionFunction.partitionCount), nodes: nodes, partitions: partitions,
            generatedAt: generatedAt)
    }

    // MARK: - Errors

    private func sendRefusal(_ refusal: QuotaRefusal, _ out: SessionOutbound) {
        services.metrics.error(code: refusal.code.rawValue)
        out.send(.errorMessage(refusal.errorMessage))
    }

    private func sendUnavailable(_ error: ErrorMessage, _ out: SessionOutbound) {
        services.metrics.error(code: WireErrorCode.unavailable.rawValue)
        out.send(.errorMessage(error))
    }

    private func sendInvalidTopic(_ topic: String, _ out: SessionOutbound) {
        services.metrics.error(code: WireErrorCode.badRequest.rawValue)
        out.send(.errorMessage(.make(.badRequest, "topic names are 1-256 characters of A-Z a-z 0-9 _ - . : /", details: ["field": "topic"])))
    }

    private func sendInvalidName(_ kind: String, _ name: String, _ out: SessionOutbound) {
        services.metrics.error(code: WireErrorCode.badRequest.rawValue)
        out.send(.errorMessage(.make(.badRequest, "\(kind) names are 1-256 bytes", details: ["field": "name"])))
    }

    private func sendBadSequence(_ text: String, _ out: SessionOutbound) {
        services.metrics.error(code: WireErrorCode.badRequest.rawValue)
        out.send(.errorMessage(.make(.badRequest, "fromSequence must be a decimal sequence number, got '\(text)'", details: ["field": "fromSequence"])))
    }
}

/// The error texts of features this server does not have (the README lists them).
enum Unsupported {
    static let search = "full-text search is not available on this server"
    static let hybridSearch = "hybrid search is not available on this server"
    static let vectorSearch = "vector search is not available on this server"
    static let sql = "SQL queries are not available on this server"
    static let entryProcessors = "entry processors are not available on this server"
    static let resolvers = "conflict resolvers are not available on this server"
}
