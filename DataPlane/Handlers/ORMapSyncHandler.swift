import Logging
import Tenancy
import TopGunCore
import TopGunWire

/// OR-Map Merkle sync (protocol.md §6.6.4): the map's root and buckets assembled from its
/// partitions, the entries of a leaf or of named keys, and the entries an offline client
/// pushes back (checked for clock drift and the map's schema, routed to their partitions'
/// owners, merged, journaled and stored).
public struct ORMapSyncHandler: Sendable {
    let maps: MapDirectory
    let mapKinds: MapKindRecorder
    let clocks: TenantClocks
    /// The node's wall clock.
    let clock: NodeClock
    let maxClockDrift: Duration
    let policies: TenantPolicies
    let partitionTable: CurrentPartitionTable
    let routing: ReadRouting
    let peers: (any PartitionPeers)?
    /// In a cluster: where a session's pushes are noted (`OwnWrites`).
    var ownWrites: OwnWrites?
    let journal: EventJournal
    let durability: any DurabilityPipeline
    let schemas: SchemaGate
    let replies: ErrorReplies
    /// On a node of a cluster: the map's tree and entries gathered from every owner.
    let spread: ClusterMapReads?

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

    public init(
        maps: MapDirectory, mapKinds: MapKindRecorder, clocks: TenantClocks, clock: NodeClock, maxClockDrift: Duration, policies: TenantPolicies,
        partitionTable: CurrentPartitionTable, routing: ReadRouting, peers: (any PartitionPeers)?, journal: EventJournal, durability: any DurabilityPipeline,
        metrics: DataPlaneMetrics, logger: Logger, spread: ClusterMapReads? = nil
    ) {
        self.spread = spread
        self.maps = maps
        self.mapKinds = mapKinds
        self.clocks = clocks
        self.clock = clock
        self.maxClockDrift = maxClockDrift
        self.policies = policies
        self.partitionTable = partitionTable
        self.routing = routing
        self.peers = peers
        self.journal = journal
        self.durability = durability
        self.schemas = SchemaGate(metrics: metrics, logger: logger)
        self.replies = ErrorReplies(metrics: metrics)
    }

    func syncInit(_ request: ORMapSyncInit, context: RequestContext, out: SessionOutbound) async {
        guard let owners = owners(out: out) else { return }
        let root: UInt32
        if let spread, !owners.isEmpty {
            guard let tree = try? await spread.tree(tenant: context.tenant, map: request.mapName, kind: .orMap, owners: owners) else {
                return replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            if tree.kind == .lww {
                return replies.send(.make(.badRequest, "map '\(request.mapName)' is an LWW map", details: ["mapName": .string(request.mapName)]), to: out)
            }
            root = tree.hashes.rootHash
        } else {
            let store = maps.existingStore(tenant: context.tenant, name: request.mapName)
            if let store, await store.kind == .lww {
                replies.send(.make(.badRequest, "map '\(request.mapName)' is an LWW map", details: ["mapName": .string(request.mapName)]), to: out)
                return
            }
            root = await store?.orRootHash() ?? 0
        }
        out.send(.ormapSyncRespRoot(ORMapSyncRespRoot(mapName: request.mapName, rootHash: root, timestamp: clocks.clock(for: context.tenant).now())))
    }

    func bucket(_ request: ORMapMerkleReqBucket, context: RequestContext, out: SessionOutbound) async {
        guard let owners = owners(out: out) else { return }
        if let spread, !owners.isEmpty {
            do {
                let tree = try await spread.tree(tenant: context.tenant, map: request.mapName, kind: .orMap, owners: owners).hashes
                if tree.isNonEmptyLeaf(request.path) {
                    let entries = try await spread.orLeaf(tenant: context.tenant, map: request.mapName, path: request.path, owners: owners)
                    out.send(.ormapSyncRespLeaf(ORMapSyncRespLeaf(mapName: request.mapName, path: request.path, entries: entries)))
                } else {
                    let buckets = tree.buckets(atPath: request.path).map { (key: String($0.digit), value: $0.hash) }
                    out.send(.ormapSyncRespBuckets(ORMapSyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary(buckets))))
                }
            } catch {
                replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return
        }
        if let store = maps.existingStore(tenant: context.tenant, name: request.mapName) {
            out.send(await store.orBucket(path: request.path))
        } else {
            out.send(.ormapSyncRespBuckets(ORMapSyncRespBuckets(mapName: request.mapName, path: request.path, buckets: WireDictionary([]))))
        }
    }

    func diff(_ request: ORMapDiffRequest, context: RequestContext, out: SessionOutbound) async {
        guard let owners = owners(out: out) else { return }
        if let spread, !owners.isEmpty {
            guard let entries = try? await spread.orEntries(tenant: context.tenant, map: request.mapName, keys: request.keys, router: partitionTable.router) else {
                return replies.send(.partitionOwnerUnreachable(owners[0]), to: out)
            }
            return out.send(.ormapDiffResponse(ORMapDiffResponse(mapName: request.mapName, entries: entries)))
        }
        let entries = await maps.existingStore(tenant: context.tenant, name: request.mapName)?.orEntries(keys: request.keys)
        out.send(.ormapDiffResponse(ORMapDiffResponse(mapName: request.mapName, entries: entries ?? [])))
    }

    func pushDiff(_ push: ORMapPushDiff, context: RequestContext, out: SessionOutbound) async {
        // The clock-drift rule holds here as for ops: a record (or a removed tag) stamped too
        // far ahead refuses the push.
        let latestMillis = WritePath.latestAcceptedMillis(nowMillis: clock.nowMillis(), maxDrift: maxClockDrift)
        for entry in push.entries {
            let ahead = entry.records.first { $0.timestamp.millis > latestMillis }?.timestamp.millis
                ?? entry.tombstones.lazy.compactMap { Timestamp($0)?.millis }.first { $0 > latestMillis }
            if let ahead {
                replies.send(.make(
                    .badRequest, "timestamp \(ahead) of key '\(entry.key)' is further ahead of the server's clock than the allowed drift",
                    details: ["mapName": .string(push.mapName), "field": "timestamp"]), to: out)
                return
            }
        }
        // The values a client pushes after being offline are writes too: the map's schema
        // applies (tombstones are never checked). Strict refuses the whole push.
        if let policy = await policies.schema(context.tenant, map: push.mapName) {
            for entry in push.entries {
                for record in entry.records {
                    if let rejection = schemas.check(record.value, policy: policy, map: push.mapName, tenant: context.tenant) {
                        return replies.send(rejection.errorMessage(key: entry.key), to: out)
                    }
                }
            }
        }
        // Before any owner merges them: their events may come back at once.
        ownWrites?.note(push.entries, map: push.mapName, by: out.id)
        // Routed entry by entry, as ops are: entries of partitions owned elsewhere go to their
        // owners first; nothing is merged here unless every owner took its share.
        var entries = push.entries
        let router = partitionTable.router
        if !router.ownsEverything || !maps.unloaded.isEmpty {
            var remote: [NodeID: [ORMapEntry]] = [:]
            entries = []
            for entry in push.entries {
                let partition = PartitionFunction.partition(forKey: entry.key, tenantID: context.tenant.rawValue)
                if case .remote(let owner) = router.route(partition: partition) {
                    remote[owner, default: []].append(entry)
                } else if maps.unloaded.contains(partition) {
                    return replies.send(.partitionNotLoaded(partition), to: out)
                } else {
                    entries.append(entry)
                }
            }
            for (owner, share) in remote.sorted(by: { $0.key < $1.key }) {
                guard let peers = peers, let outcome = try? await peers.pushORMapEntries(share, mapName: push.mapName, on: owner, context: context) else {
                    return replies.send(.partitionOwnerUnreachable(owner), to: out)
                }
                if !outcome.success {
                    out.send(.errorMessage(.make(outcome.code ?? .badRequest, outcome.error ?? "rejected", details: ["mapName": .string(push.mapName)])))
                    return
                }
            }
        }
        // An empty push creates no map.
        guard !entries.isEmpty else { return }
        let store = maps.store(tenant: context.tenant, name: push.mapName)
        await mapKinds.settle(store, proposing: .orMap)
        let result = await store.pushDiff(entries, writer: out.id, nowMillis: clock.nowMillis())
        if let rejected = result.outcomes.first(where: { !$0.success }) {
            out.send(.errorMessage(.make(rejected.code ?? .badRequest, rejected.error ?? "rejected", details: ["mapName": .string(push.mapName)])))
            return
        }
        journal.append(result.journal, mapName: push.mapName, tenant: context.tenant)
        if !result.changedRecords.isEmpty { _ = await durability.enqueue(result.changedRecords) }
    }
}
