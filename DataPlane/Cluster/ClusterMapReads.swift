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

    /// Serves `map.tree`, `map.leaf` and `map.entries` from this node's partitions.
    static func serve(_ type: String, body: [UInt8], maps: MapDirectory) async throws -> [UInt8] {
        let object = try ClusterCodec.decode(body)
        let tenant = TenantID(try object.required("t"))
        let map: String = try object.required("m")
        let orMap = (try object.required("k", as: String.self)) == Kind.orMap.rawValue
        let store = maps.existingStore(tenant: tenant, name: map)
        switch type {
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
