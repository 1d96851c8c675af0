import Tenancy
import TopGunWire

/// LWW Merkle sync (protocol.md §6.6.3): the map's root, then bucket after bucket down to
/// the leaves' records, assembled from the partitions that hold the map's keys.
public struct LWWSyncHandler: Sendable {
    let maps: MapDirectory
    let clocks: TenantClocks
    let routing: ReadRouting
    let replies: ErrorReplies

    public init(maps: MapDirectory, clocks: TenantClocks, routing: ReadRouting, metrics: DataPlaneMetrics) {
        self.maps = maps
        self.clocks = clocks
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
    }

    func syncInit(_ request: SyncInit, context: RequestContext, out: SessionOutbound) async {
        // A root over some of the map's partitions would tell the client "in sync" wrongly.
        if let refusal = ReadRouting.refusal(routing.mapRead()) { return replies.send(refusal, to: out) }
        let store = maps.existingStore(tenant: context.tenant, name: request.mapName)
        if let store, await store.kind == .orMap {
            replies.send(.make(.badRequest, "map '\(request.mapName)' is an OR-Map; use ORMAP_SYNC_INIT", details: ["mapName": .string(request.mapName)]), to: out)
            return
        }
        let root = await store?.lwwRootHash() ?? 0
        out.send(.syncRespRoot(SyncRespRoot(mapName: request.mapName, rootHash: root, timestamp: clocks.clock(for: context.tenant).now())))
    }

    func bucket(_ request: MerkleReqBucket, context: RequestContext, out: SessionOutbound) async {
        if let refusal = ReadRouting.refusal(routing.mapRead()) { return replies.send(refusal, to: out) }
        if let store = maps.existingStore(tenant: context.tenant, name: request.mapName) {
            out.send(await store.lwwBucket(path: request.path))
        } else {
            out.send(.syncRespBuckets(SyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary([]))))
        }
    }
}
