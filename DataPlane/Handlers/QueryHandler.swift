import Tenancy
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

    func unsubscribe(_ unsub: QueryUnsub, session: inout SessionState) async {
        let out = session.outbound
        guard let id = session.queryMaps.removeValue(forKey: unsub.queryId) else { return }
        policies.releaseSubscription(session: out.id, key: "query:" + unsub.queryId)
        if let store = session.touchedMaps[id] { await store.unsubscribe(queryId: unsub.queryId, session: out.id) }
    }
}
