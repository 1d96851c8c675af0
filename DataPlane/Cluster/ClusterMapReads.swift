import Tenancy
import TopGunCore
import TopGunWire

extension ClusterMessageType {
    /// A node's part of a map's Merkle tree: `MapPartRequest` → `MapTreePart`.
    static let mapTree = "map.tree"
    /// A node's records (LWW) or entries (OR-Map) of one leaf of a map's tree.
    static let mapLeaf = "map.leaf"
    /// A node's OR-Map entries of some keys of a map.
    static let mapEntries = "map.entries"
    /// A node's part of an HTTP sync delta of a map: `{t, m, k, ms, mc, mn, max}` →
    /// `{c: [[partition, sequence, SyncLeafRecord]], cut?, l: [[partition, sequence]]}`.
    static let mapDelta = "map.delta"
    /// A node's matches of a one-shot query over a map: `{t, m, k, q: QUERY_SUB}` →
    /// `{r: [[key, value]]}`.
    static let mapQuery = "map.query"
}

/// Merkle sync of a map whose partitions lie on several nodes (protocol.md §6.6.3, §6.6.4):
/// the map's tree is the sum of its partitions' trees (`MerkleHashes.summing`), so the node a
/// client asks gathers each owner's part of the tree, and a leaf's records from each owner,
/// and answers as if it held the whole map: roots equal means in sync, cluster-wide.
public struct ClusterMapReads: Sendable {
    let transport: ClusterTransport
    let maps: MapDirectory
    let timeout: Duration

    public init(transport: ClusterTransport, maps: MapDirectory, timeout: Duration) {
        self.transport = transport
        self.maps = maps
        self.timeout = timeout
    }

    enum Kind: String, Sendable {
        case lww
        case orMap = "or"
    }

    /// What an owner sends of its part of a map.
    struct TreePart: Sendable {
        /// The map's kind there (nil: it holds no key of the map).
        var kind: MapKind?
        var leaves: [Int: MerkleHashes.Leaf]
    }

    /// The whole map's tree, this node's part and each of `owners`' summed; the map's kind
    /// as any node knows it.
    func tree(tenant: TenantID, map: String, kind: Kind, owners: [NodeID]) async throws -> (hashes: MerkleHashes, kind: MapKind?) {
        var parts: [MerkleHashes] = []
        var known: MapKind?
        if let store = maps.existingStore(tenant: tenant, name: map) {
            known = await store.kind
            parts.append(MerkleHashes(leaves: await store.merkleLeaves(orMap: kind == .orMap)))
        }
        let body = Self.request(tenant: tenant, map: map, kind: kind)
        try await withThrowingTaskGroup(of: TreePart.self) { group in
            for owner in owners {
                group.addTask { try Self.treePart(from: try await transport.request(ClusterMessageType.mapTree, body, to: owner, timeout: timeout)) }
            }
            for try await part in group {
                known = known ?? part.kind
                parts.append(MerkleHashes(leaves: part.leaves))
            }
        }
        return (MerkleHashes.summing(parts), known)
    }

    /// The LWW records of the leaf at `path`, from this node and `owners`, by key.
    func lwwLeaf(tenant: TenantID, map: String, path: String, owners: [NodeID]) async throws -> [SyncLeafRecord] {
        var records = await maps.existingStore(tenant: tenant, name: map)?.lwwLeafRecords(path: path) ?? []
        let body = Self.request(tenant: tenant, map: map, kind: .lww, path: path)
        try await withThrowingTaskGroup(of: [SyncLeafRecord].self) { group in
            for owner in owners {
                group.addTask {
                    let object = try ClusterCodec.decode(try await transport.request(ClusterMessageType.mapLeaf, body, to: owner, timeout: timeout))
                    return try object.required("records")
                }
            }
            for try await part in group { records += part }
        }
        return records.sorted { $0.key < $1.key }
    }

    /// The OR-Map entries of the leaf at `path`, from this node and `owners`, by key.
    func orLeaf(tenant: TenantID, map: String, path: String, owners: [NodeID]) async throws -> [ORMapEntry] {
        var entries = await maps.existingStore(tenant: tenant, name: map)?.orLeafEntries(path: path) ?? []
        let body = Self.request(tenant: tenant, map: map, kind: .orMap, path: path)
        try await withThrowingTaskGroup(of: [ORMapEntry].self) { group in
            for owner in owners {
                group.addTask {
                    let object = try ClusterCodec.decode(try await transport.request(ClusterMessageType.mapLeaf, body, to: owner, timeout: timeout))
                    return try object.required("entries")
                }
            }
            for try await part in group { entries += part }
        }
        return entries.sorted { $0.key < $1.key }
    }

    /// The OR-Map entries of `keys`, each from its partition's owner (this node's own here).
    func orEntries(tenant: TenantID, map: String, keys: [String], router: PartitionRouter) async throws -> [ORMapEntry] {
        var local: [String] = []
        var remote: [NodeID: [String]] = [:]
        for key in keys {
            switch router.route(key: key, tenant: tenant.rawValue) {
            case .local: local.append(key)
            case .remote(let owner): remote[owner, default: []].append(key)
            }
        }
        var byKey: [String: ORMapEntry] = [:]
        if !local.isEmpty, let store = maps.existingStore(tenant: tenant, name: map) {
            for entry in await store.orEntries(keys: local) { byKey[entry.key] = entry }
        }
        try await withThrowingTaskGroup(of: [ORMapEntry].self) { group in
            for (owner, share) in remote {
                var body = Self.requestObject(tenant: tenant, map: map, kind: .orMap)
                body.append("keys", share)
                let encoded = ClusterCodec.encode(body)
                group.addTask {
                    let object = try ClusterCodec.decode(try await transport.request(ClusterMessageType.mapEntries, encoded, to: owner, timeout: timeout))
                    return try object.required("entries")
                }
            }
            for try await part in group { for entry in part { byKey[entry.key] = entry } }
        }
        return keys.map { byKey[$0] ?? ORMapEntry(key: $0, records: [], tombstones: []) }
    }

    // MARK: Wire

    static func requestObject(tenant: TenantID, map: String, kind: Kind, path: String? = nil) -> DataObject {
        var object: DataObject = ["t": .string(tenant.rawValue), "m": .string(map), "k": .string(kind.rawValue)]
        object.append("path", path)
        return object
    }

    /// An HTTP sync delta of a map whose partitions lie on this node and on `owners`: each
    /// one's changes after `position`, merged (`SyncDelta.merge`).
    func delta(tenant: TenantID, map: String, after position: SyncPosition, maxBytes: Int, owners: [NodeID]) async throws -> (
        changes: [SyncDelta.Change], next: SyncPosition
    ) {
        var parts: [SyncDelta] = []
        if let store = maps.existingStore(tenant: tenant, name: map) {
            parts.append(await store.lwwChanges(after: position, maxBytes: maxBytes))
        }
        let at = position.timestamp(nowMillis: 0)
        var object = Self.requestObject(tenant: tenant, map: map, kind: .lww, path: nil)
        object["ms"] = .int(at.millis)
        object["mc"] = .int(Int64(at.counter))
        object["mn"] = .string(at.nodeId)
        object["max"] = .int(Int64(maxBytes))
        let body = ClusterCodec.encode(object)
        try await withThrowingTaskGroup(of: SyncDelta.self) { group in
            for owner in owners {
                group.addTask { try Self.deltaPart(from: try await transport.request(ClusterMessageType.mapDelta, body, to: owner, timeout: timeout)) }
            }
            for try await part in group { parts.append(part) }
        }
        return SyncDelta.merge(parts, after: position, maxBytes: maxBytes)
    }

    /// One page of a one-shot query over a map whose partitions lie on this node and on
    /// `owners`. Each owner answers with its first `limit + 1` matches after the cursor (all
    /// of them without a limit); the page is the query run again over their union, which
    /// holds the global first `limit + 1` (a row among them has fewer than that many rows
    /// before it on its own node), so its rows, `hasMore` and `nextCursor` are a single node's.
    /// A grouped query gathers every match (its groups span owners) and groups them here.
    func queryPage(
        tenant: TenantID, map: String, query: Query, nowMillis: Int64, maxBytes: Int, cost: @escaping @Sendable (QueryRecord) -> Int, owners: [NodeID]
    ) async throws -> QueryPage {
        var wider = query
        if query.isGrouped {
            wider = Query(where: query.where, predicate: query.predicate)
        } else {
            wider.limit = query.limit.map { $0 + 1 }
        }
        var union: [HashedKey: QueryRecord] = [:]
        if let store = maps.existingStore(tenant: tenant, name: map) {
            for record in await store.queryPage(wider, nowMillis: nowMillis, maxBytes: .max, cost: cost).results { union[HashedKey(record.key)] = record }
        }
        var object = Self.requestObject(tenant: tenant, map: map, kind: .lww, path: nil)
        object["q"] = .binary(WireCodec().encode(.querySub(QuerySub(queryId: "", mapName: map, query: wider))))
        let body = ClusterCodec.encode(object)
        try await withThrowingTaskGroup(of: [QueryRecord].self) { group in
            for owner in owners {
                group.addTask {
                    let reply = try ClusterCodec.decode(try await transport.request(ClusterMessageType.mapQuery, body, to: owner, timeout: timeout))
                    let rows: [DataValue] = try reply.required("r")
                    return try rows.map { row in
                        guard case .array(let fields) = row, fields.count == 2, case .string(let key) = fields[0] else {
                            throw ClusterMessageError("a query row is malformed")
                        }
                        return QueryRecord(key: key, value: fields[1])
                    }
                }
            }
            for try await rows in group {
                for record in rows { union[HashedKey(record.key)] = record }
            }
        }
        let records = union.values.map { (key: $0.key, value: $0.value) }
        return QueryExecutor().execute(
            query, records: records, nowMillis: nowMillis, budget: QueryExecutor.ByteBudget(maxBytes: maxBytes, cost: cost)
        ) { key in union[HashedKey(key)]?.value }
    }

    static func deltaPart(from bytes: [UInt8]) throws -> SyncDelta {
        let object = try ClusterCodec.decode(bytes)
        func partitionAndSequence(_ fields: [DataValue]) throws -> (Int, Int64) {
            guard fields.count >= 2, case .int(let partition) = fields[0], case .int(let sequence) = fields[1],
                (0..<Int64(PartitionFunction.partitionCount)).contains(partition)
            else { throw ClusterMessageError("a delta's change is malformed") }
            return (Int(partition), sequence)
        }
        let rows: [DataValue] = try object.required("c")
        let changes = try rows.map { row -> SyncDelta.Change in
            guard case .array(let fields) = row, fields.count == 3 else { throw ClusterMessageError("a delta's change is malformed") }
            let (partition, sequence) = try partitionAndSequence(fields)
            let leaf = try SyncLeafRecord(wire: fields[2])
            return SyncDelta.Change(partition: partition, sequence: sequence, key: leaf.key, record: leaf.record)
        }
        let largestRows: [DataValue] = try object.required("l")
        var largest: [Int: Int64] = [:]
        for row in largestRows {
            guard case .array(let fields) = row else { throw ClusterMessageError("a delta's largest sequence is malformed") }
            let (partition, sequence) = try partitionAndSequence(fields)
            largest[partition] = sequence
        }
        let cut: Int? = try object.optional("cut")
        return SyncDelta(changes: changes, cutAt: cut, largest: largest)
    }

    static func request(tenant: TenantID, map: String, kind: Kind, path: String? = nil) -> [UInt8] {
        ClusterCodec.encode(requestObject(tenant: tenant, map: map, kind: kind, path: path))
    }

    static func treePart(from bytes: [UInt8]) throws -> TreePart {
        let object = try ClusterCodec.decode(bytes)
        let kindText: String? = try object.optional("kind")
        let rows: [DataValue] = try object.required("leaves")
        var leaves: [Int: MerkleHashes.Leaf] = [:]
        for row in rows {
            guard case .array(let fields) = row, fields.count == 3,
                case .int(let index) = fields[0], case .int(let hash) = fields[1], case .int(let count) = fields[2],
                (0..<(1 << (4 * MerkleTree.depth))).contains(index), (0...Int64(UInt32.max)).contains(hash), count >= 0
            else { throw ClusterMessageError("a leaf of a map's tree is malformed") }
            leaves[Int(index)] = MerkleHashes.Leaf(hash: UInt32(hash), keyCount: Int(count))
        }
        return TreePart(kind: kindText == "lww" ? .lww : kindText == "or" ? .orMap : nil, leaves: leaves)
    }

    // MARK: The owner's side

    /// Serves `map.tree`, `map.leaf`, `map.entries`, `map.delta` and `map.query` from this
    /// node's partitions; refuses while one it owns is still loading (its part would lack it).
    static func serve(_ type: String, body: [UInt8], maps: MapDirectory, table: CurrentPartitionTable) async throws -> [UInt8] {
        if let loading = table.table.partitions(ownedBy: table.localNode).first(where: maps.unloaded.contains) {
            throw ClusterMessageError(ErrorMessage.partitionNotLoaded(loading).message)
        }
        let object = try ClusterCodec.decode(body)
        let tenant = TenantID(try object.required("t"))
        let map: String = try object.required("m")
        let orMap = (try object.required("k", as: String.self)) == Kind.orMap.rawValue
        let store = maps.existingStore(tenant: tenant, name: map)
        switch type {
        case ClusterMessageType.mapQuery:
            guard case .binary(let bytes)? = object["q"], case .querySub(let sub) = try WireCodec().decode(bytes), !sub.query.isGrouped else {
                throw ClusterMessageError("a map query carries no query")
            }
            let query = sub.query
            let page = await store?.queryPage(query, nowMillis: SystemClock().nowMillis(), maxBytes: .max) { _ in 0 }
            let rows: [DataValue] = page?.results.map { .array([.string($0.key), $0.value]) } ?? []
            return ClusterCodec.encode(["r": .array(rows)])
        case ClusterMessageType.mapDelta:
            let position = SyncPosition(timestamp: Timestamp(
                millis: try object.required("ms"), counter: try object.required("mc"), nodeId: try object.required("mn")))
            let maxBytes: Int = try object.required("max")
            let delta = await store?.lwwChanges(after: position, maxBytes: max(maxBytes, 1)) ?? SyncDelta(changes: [], cutAt: nil, largest: [:])
            var reply: DataObject = [
                "c": .array(delta.changes.map { .array([.int(Int64($0.partition)), .int($0.sequence), SyncLeafRecord(key: $0.key, record: $0.record).wireValue]) }),
                "l": .array(delta.largest.sorted { $0.key < $1.key }.map { .array([.int(Int64($0.key)), .int($0.value)]) }),
            ]
            reply.append("cut", delta.cutAt)
            return ClusterCodec.encode(reply)
        case ClusterMessageType.mapTree:
            var reply: DataObject = [:]
            if let store, let kind = await store.kind { reply.append("kind", kind == .lww ? "lww" : "or") }
            let leaves = await store?.merkleLeaves(orMap: orMap) ?? [:]
            let rows: [DataValue] = leaves.sorted { $0.key < $1.key }.map { index, leaf in
                .array([.int(Int64(index)), .int(Int64(leaf.hash)), .int(Int64(leaf.keyCount))])
            }
            reply.append("leaves", DataValue.array(rows))
            return ClusterCodec.encode(reply)
        case ClusterMessageType.mapLeaf:
            let path: String = try object.required("path")
            if orMap {
                let entries = await store?.orLeafEntries(path: path) ?? []
                return ClusterCodec.encode(["entries": entries.wireValue])
            }
            let records = await store?.lwwLeafRecords(path: path) ?? []
            return ClusterCodec.encode(["records": records.wireValue])
        default:
            let keys: [String] = try object.required("keys")
            let entries = await store?.orEntries(keys: keys) ?? keys.map { ORMapEntry(key: $0, records: [], tombstones: []) }
            return ClusterCodec.encode(["entries": entries.wireValue])
        }
    }
}
