import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// A map's records live in one part per partition; the map's tree, results and sync answers
/// are assembled from the parts, and a partition is streamed, dropped and reloaded on its own.
@Suite struct MapPartitionTests {
    static let tenant: TenantID = "tn_parts"

    static func puts(_ count: Int, prefix: String = "k", millis: Int64 = 1_000) -> [ClientOp] {
        (0..<count).map { index in
            MapStoreTests.put("\(prefix)\(index)", .int(Int64(index)), MapStoreTests.ts(millis + Int64(index)), id: "\(index)")
        }
    }

    static func orAdds(_ count: Int) -> [ClientOp] {
        (0..<count).map { index in
            let ts = MapStoreTests.ts(2_000 + Int64(index))
            return ClientOp(
                id: "\(index)", mapName: "todos", key: "o\(index % 40)", opType: "OR_ADD",
                orRecord: ORMapRecord(value: .int(Int64(index)), timestamp: ts, tag: ts.description))
        }
    }

    @Test func theAssembledTreeIsTheTreeOfTheWholeMap() async {
        let store = MapStoreTests.makeStore(Self.tenant)
        let ops = Self.puts(600) + [MapStoreTests.put("k3", nil, MapStoreTests.ts(9_000))]
        _ = await store.apply(ops, writer: nil, nowMillis: 0)
        // The same records in one map, as a client holds them.
        var whole = LWWMap()
        for op in ops { whole.merge(key: op.key, record: op.record!) }
        #expect(await store.partitions.count > 100, "600 keys spread over many partitions")
        #expect(await store.lwwRootHash() == whole.merkleTree.rootHash)
        // Every bucket a client may ask for, and the leaves' records.
        let tree = whole.merkleTree
        for first in tree.buckets(atPath: "") {
            let path = String(first.digit)
            guard case .syncRespBuckets(let reply) = await store.lwwBucket(path: path) else { Issue.record("no buckets at \(path)"); return }
            #expect(reply.buckets.entries.map(\.value) == tree.buckets(atPath: path).map(\.hash))
        }
        let leafKey = "k17"
        let leafPath = String(MerkleTree.path(of: leafKey).prefix(3))
        guard case .syncRespLeaf(let leaf) = await store.lwwBucket(path: leafPath) else { Issue.record("no leaf"); return }
        #expect(leaf.records.map(\.key) == tree.keys(inLeaf: leafPath).sorted())
    }

    /// The whole map's hashes are kept current as parts change between a client's reads
    /// (not rebuilt): after every round of writes they equal the tree of the whole map.
    @Test func theWholeTreeStaysCurrentBetweenReads() async {
        let store = MapStoreTests.makeStore(Self.tenant)
        var whole = LWWMap()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<12 {
            var ops: [ClientOp] = []
            for index in 0..<50 {
                let key = "k\(Int.random(in: 0..<200, using: &generator))"
                let value: DataValue? = index % 7 == 0 ? nil : .int(Int64(round * 100 + index))
                ops.append(MapStoreTests.put(key, value, MapStoreTests.ts(Int64(10_000 + round * 100 + index)), id: "\(index)"))
            }
            _ = await store.apply(ops, writer: nil, nowMillis: 0)
            for op in ops { whole.merge(key: op.key, record: op.record!) }
            #expect(await store.lwwRootHash() == whole.merkleTree.rootHash, "round \(round)")
            let path = String(MerkleTree.path(of: ops[0].key).prefix(2))
            guard case .syncRespBuckets(let reply) = await store.lwwBucket(path: path) else { Issue.record("no buckets"); return }
            #expect(reply.buckets.entries.map(\.value) == whole.merkleTree.buckets(atPath: path).map(\.hash))
        }
    }

    @Test func theWholeORMapTreeStaysCurrentThroughAddsRemovesAndPushes() async {
        let store = MapStoreTests.makeStore(Self.tenant)
        var whole = ORMap()
        for round in 0..<8 {
            let adds = (0..<30).map { index in
                let ts = MapStoreTests.ts(Int64(50_000 + round * 100 + index))
                return ClientOp(id: "\(index)", mapName: "todos", key: "o\((round * 7 + index) % 45)", opType: "OR_ADD",
                                orRecord: ORMapRecord(value: .int(Int64(index)), timestamp: ts, tag: ts.description))
            }
            // Each round removes a tag added in the round before, under its key.
            var ops = adds
            if round > 0 {
                let ts = MapStoreTests.ts(Int64(50_000 + (round - 1) * 100 + 3))
                ops.append(ClientOp(id: "r", mapName: "todos", key: "o\(((round - 1) * 7 + 3) % 45)", opType: "OR_REMOVE", orTag: ts.description))
            }
            _ = await store.apply(ops, writer: nil, nowMillis: 0)
            for op in ops {
                if let record = op.orRecord { whole.apply(key: op.key, record: record) } else { whole.applyTombstone(tag: op.orTag!, key: op.key) }
            }
            #expect(await store.orRootHash() == whole.merkleTree.rootHash, "round \(round)")
        }
        // A push of records and tombstones from an offline client.
        let ts = MapStoreTests.ts(90_000)
        let pushed = [ORMapEntry(key: "o1", records: [ORMapRecord(value: "p", timestamp: ts, tag: ts.description)], tombstones: [MapStoreTests.ts(50_001).description])]
        _ = await store.pushDiff(pushed, writer: nil, nowMillis: 0)
        whole.mergeKey("o1", records: pushed[0].records, tombstones: pushed[0].tombstones)
        #expect(await store.orRootHash() == whole.merkleTree.rootHash)
    }

    @Test func aPartitionStreamsDropsAndReloadsOnItsOwn() async {
        let store = MapStoreTests.makeStore(Self.tenant)
        _ = await store.apply(Self.puts(400), writer: nil, nowMillis: 0)
        let rootBefore = await store.lwwRootHash()
        let partition = PartitionFunction.partition(forKey: "k7", tenantID: Self.tenant.rawValue)
        let rows = await store.records(inPartition: partition)
        let leaves = await store.merkleHashes(inPartition: partition)
        #expect(!rows.isEmpty)
        #expect(rows.allSatisfy { $0.partition == partition && PartitionFunction.partition(forKey: $0.key.key, tenantID: Self.tenant.rawValue) == partition })
        // Every partition's rows together are the whole map, each once.
        var all: [StoredRecord] = []
        for p in await store.partitions { all += await store.records(inPartition: p) }
        #expect(all.count == 400)
        #expect(Set(all.map(\.key.key)).count == 400)

        #expect(await store.dropPartition(partition) == rows.count)
        #expect(await store.recordCount == 400 - rows.count)
        #expect(await store.records(inPartition: partition).isEmpty)
        #expect(await store.lwwRootHash() != rootBefore)
        // Other partitions are untouched.
        #expect(await store.partitions.count == Set(all.map(\.partition)).count - 1)

        await store.restore(rows)
        #expect(await store.records(inPartition: partition) == rows)
        #expect(await store.merkleHashes(inPartition: partition) == leaves)
        #expect(await store.lwwRootHash() == rootBefore)
    }

    @Test func orMapPartsKeepTagsAndTombstones() async {
        let store = MapStoreTests.makeStore(Self.tenant)
        _ = await store.apply(Self.orAdds(120), writer: nil, nowMillis: 0)
        let tag = MapStoreTests.ts(2_005).description
        let remove = ClientOp(id: "r", mapName: "todos", key: "o5", opType: "OR_REMOVE", orTag: tag)
        _ = await store.apply([remove], writer: nil, nowMillis: 0)
        var whole = ORMap()
        for op in Self.orAdds(120) { whole.apply(key: op.key, record: op.orRecord!) }
        whole.applyTombstone(tag: tag, key: "o5")
        #expect(await store.orRootHash() == whole.merkleTree.rootHash)

        let partition = PartitionFunction.partition(forKey: "o5", tenantID: Self.tenant.rawValue)
        let rows = await store.records(inPartition: partition)
        let o5 = rows.first { $0.key.key == "o5" }
        guard case .orMap(let entry) = o5?.value else { Issue.record("no OR row for o5"); return }
        #expect(entry.tombstones == [tag])
        #expect(entry.records == whole.records(forKey: "o5"))
        let leaves = await store.merkleHashes(inPartition: partition)
        await store.dropPartition(partition)
        await store.restore(rows)
        #expect(await store.merkleHashes(inPartition: partition) == leaves)
        #expect(await store.orRootHash() == whole.merkleTree.rootHash)
    }
}
