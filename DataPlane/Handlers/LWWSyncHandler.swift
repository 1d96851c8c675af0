import Tenancy
import TopGunCore
import TopGunWire

/// LWW Merkle sync (protocol.md §6.6.3): the map's root, then bucket after bucket down to
/// the leaves' records, assembled from the partitions that hold the map's keys.
public struct LWWSyncHandler: Sendable {
    let maps: MapDirectory
    let clocks: TenantClocks
    let routing: ReadRouting
    let replies: ErrorReplies

    /// On a node of a cluster: the map's tree gathered from every owner.
    let spread: ClusterMapReads?

    public init(maps: MapDirectory, clocks: TenantClocks, routing: ReadRouting, metrics: DataPlaneMetrics, spread: ClusterMapReads? = nil) {
        self.maps = maps
        self.clocks = clocks
        self.routing = routing
        self.replies = ErrorReplies(metrics: metrics)
        self.spread = spread
    }

    /// The owners to ask besides this node, or nil after sending the refusal (a root over
    /// some of the map's partitions would tell the client "in sync" wrongly).
    func owners(out: SessionOutbound) -> [NodeID]? {
        switch routing.mapSyncOwners(canGather: spread != nil) {
        case .success(let owners): return owners
        case .failure(let refused):
            replies.send(refused.message, to: out)
            return nil
        }
    }

    func syncInit(_ request: SyncInit, context: RequestContext, out: SessionOutbound) async {
        guard let owners = owners(out: out) else { return }
        let root: UInt32
        if let spread, !owners.isEmpty {
            guard let tree = try? await spread.tree(tenant: context.tenant, map: request.mapName, kind: .lww, owners: owners) else {
                return replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            if tree.kind == .orMap { return refuseORMap(request.mapName, out: out) }
            root = tree.hashes.rootHash
        } else {
            let store = maps.existingStore(tenant: context.tenant, name: request.mapName)
            if let store, await store.kind == .orMap { return refuseORMap(request.mapName, out: out) }
            root = await store?.lwwRootHash() ?? 0
        }
        out.send(.syncRespRoot(SyncRespRoot(mapName: request.mapName, rootHash: root, timestamp: clocks.clock(for: context.tenant).now())))
    }

    private func refuseORMap(_ map: String, out: SessionOutbound) {
        replies.send(.make(.badRequest, "map '\(map)' is an OR-Map; use ORMAP_SYNC_INIT", details: ["mapName": .string(map)]), to: out)
    }

    func bucket(_ request: MerkleReqBucket, context: RequestContext, out: SessionOutbound) async {
        guard let owners = owners(out: out) else { return }
        if let spread, !owners.isEmpty {
            do {
                let tree = try await spread.tree(tenant: context.tenant, map: request.mapName, kind: .lww, owners: owners).hashes
                if tree.isNonEmptyLeaf(request.path) {
                    let records = try await spread.lwwLeaf(tenant: context.tenant, map: request.mapName, path: request.path, owners: owners)
                    out.send(.syncRespLeaf(SyncRespLeaf(mapName: request.mapName, path: request.path, records: records)))
                } else {
                    let buckets = tree.buckets(atPath: request.path).map { (key: String($0.digit), value: $0.hash) }
                    out.send(.syncRespBuckets(SyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary(buckets))))
                }
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let store = maps.existingStore(tenant: context.tenant, name: request.mapName) {
            out.send(await store.lwwBucket(path: request.path))
        } else {
            out.send(.syncRespBuckets(SyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary([]))))
        }
    }
}
