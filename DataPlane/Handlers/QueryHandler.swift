import Tenancy
import TopGunCore
import TopGunWire

/// Live queries (protocol.md §6.6.5): `QUERY_SUB` answers with a bounded `QUERY_RESP` and
/// keeps the query live (its further result pages follow as the client reads);
/// `QUERY_UNSUB` ends it. Each live query counts against the tenant's subscriptions quota.
public struct QueryHandler: Sendable {
    let maps: MapDirectory
    let policies: TenantPolicies
    let resultPageBytes: Int
    let clock: NodeClock
    let routing: ReadRouting
    let replies: ErrorReplies
    /// On a node of a cluster: live queries over every owner's partitions.
    var cluster: ClusterCoordination?
    /// On a node of a cluster: one-shot pages gathered from every owner.
    var spread: ClusterMapReads?

    public init(maps: MapDirectory, policies: TenantPolicies, resultPageBytes: Int, clock: NodeClock, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.maps = maps
        self.routing = routing
        self.policies = policies
        self.resultPageBytes = resultPageBytes
        self.clock = clock
        self.replies = ErrorReplies(metrics: metrics)
    }

    func subscribe(_ sub: QuerySub, context: RequestContext, session: inout SessionState) async {
        let out = session.outbound
        // On a node of a cluster a live query is coordinated here and computed by the owners,
        // wherever its partitions are (and go); one-shot pages and groups are computed here.
        if let cluster, sub.query.cursor == nil, !sub.query.isGrouped {
            if let refusal = await policies.acquireSubscription(context.tenant, session: out.id, key: "query:" + sub.queryId) {
                return replies.refused(refusal, to: out)
            }
            if let id = session.queryMaps.removeValue(forKey: sub.queryId), let store = session.touchedMaps[id] {
                await store.unsubscribe(queryId: sub.queryId, session: out.id)
            }
            session.clusterQueries.insert(sub.queryId)
            await cluster.liveQueries.subscribe(sub, tenant: context.tenant, out: out, pageBytes: resultPageBytes)
            return
        }
        // A page (with a cursor) or groups over a map spread across nodes: each owner's
        // matches, run again here over their union (`ClusterMapReads.queryPage`).
        if let spread, case .remote(let owners) = routing.mapRead(keys: sub.query.exactKeys, tenant: context.tenant) {
            return await onePage(sub, owners: owners, context: context, spread: spread, out: out)
        }
        // Results from some of the map's partitions only would be wrong, not partial. A query
        // that pins its keys needs only their partitions.
        if let refusal = ReadRouting.refusal(routing.mapRead(keys: sub.query.exactKeys, tenant: context.tenant)) {
            return replies.send(refusal, to: out)
        }
        // A re-subscription under the same id replaces the query and counts once.
        if let refusal = await policies.acquireSubscription(context.tenant, session: out.id, key: "query:" + sub.queryId) {
            return replies.refused(refusal, to: out)
        }
        let id = MapDirectory.MapID(tenant: context.tenant, name: sub.mapName)
        let store = maps.store(tenant: context.tenant, name: sub.mapName)
        let morePages = await store.subscribe(sub, subscriber: out, nowMillis: clock.nowMillis(), pageBytes: resultPageBytes)
        session.touchedMaps[id] = store
        session.queryMaps[sub.queryId] = id
        if morePages { session.sendRemainingPages(of: sub.queryId, from: store, pageBytes: resultPageBytes) }
    }

    private func onePage(_ sub: QuerySub, owners: [NodeID], context: RequestContext, spread: ClusterMapReads, out: SessionOutbound) async {
        let fields = sub.fields
        let cost: @Sendable (QueryRecord) -> Int = { record in
            let value = fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value
            return 12 + MessagePackWriter.stringSize(record.key) + MessagePackWriter.encodedSize(of: value)
        }
        do {
            let page = try await spread.queryPage(
                tenant: context.tenant, map: sub.mapName, query: sub.query, nowMillis: clock.nowMillis(), maxBytes: resultPageBytes, cost: cost,
                owners: owners)
            out.send(.queryResp(QueryResp(
                queryId: sub.queryId,
                results: page.results.map { record in
                    QueryResultItem(key: record.key, value: fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value)
                },
                nextCursor: page.nextCursor, hasMore: page.hasMore, cursorStatus: sub.query.cursor == nil ? nil : page.cursorStatus)))
        } catch {
            replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
        }
    }

    func unsubscribe(_ unsub: QueryUnsub, session: inout SessionState) async {
        let out = session.outbound
        if let cluster, session.clusterQueries.remove(unsub.queryId) != nil {
            policies.releaseSubscription(session: out.id, key: "query:" + unsub.queryId)
            await cluster.liveQueries.unsubscribe(session: out.id, queryId: unsub.queryId)
            return
        }
        guard let id = session.queryMaps.removeValue(forKey: unsub.queryId) else { return }
        policies.releaseSubscription(session: out.id, key: "query:" + unsub.queryId)
        if let store = session.touchedMaps[id] { await store.unsubscribe(queryId: unsub.queryId, session: out.id) }
    }
}
