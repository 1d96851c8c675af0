import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

extension StorageTests {
    /// A partition dropped from memory and loaded again from storage holds what it held: the
    /// same records (timestamps, OR tags, tombstones) and the same Merkle leaves.
    @Suite struct LocalPartitionsTests {
        @Test(arguments: StorageBackend.databases)
        func aDroppedPartitionReloadsFromStorageWithTheSameRecordsAndLeaves(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let maps = MapDirectory(clocks: TenantClocks(nodeId: "server"))
                let partitions = LocalPartitions(maps: maps, counters: CounterRegistry())
                let tenants: [TenantID] = ["tn_one", "tn_two"]
                for tenant in tenants {
                    let lww = maps.store(tenant: tenant, name: "todos")
                    let written = await lww.apply(MapPartitionTests.puts(300) + [MapStoreTests.put("k9", nil, MapStoreTests.ts(50_000))], writer: nil, nowMillis: 0)
                    try await storage.store(written.changedRecords)
                    let or = maps.store(tenant: tenant, name: "tags")
                    let ors = MapPartitionTests.orAdds(80).map { op in
                        var op = op
                        op.mapName = "tags"
                        return op
                    }
                    let orWritten = await or.apply(
                        ors + [ClientOp(id: "r", mapName: "tags", key: "o1", opType: "OR_REMOVE", orTag: MapStoreTests.ts(2_001).description)],
                        writer: nil, nowMillis: 0)
                    try await storage.store(orWritten.changedRecords)
                }
                // The partition of an OR key with a tombstone; it holds LWW keys too.
                let target = PartitionFunction.partition(forKey: "o1", tenantID: "tn_one")
                let before = await partitions.records(target)
                var leaves: [String: MerkleHashes] = [:]
                for store in maps.allStores { leaves["\(store.tenant)/\(store.name)"] = await store.merkleHashes(inPartition: target) }
                #expect(before.contains { $0.key.mapName == "tags" })

                let dropped = await partitions.drop(target)
                #expect(dropped == before.count)
                #expect(await partitions.records(target).isEmpty)
                let loaded = try await partitions.load(target, from: storage)
                #expect(loaded == before.count)
                let after = await partitions.records(target)
                #expect(StorageFixtures.sorted(after) == StorageFixtures.sorted(before))
                for store in maps.allStores {
                    #expect(await store.merkleHashes(inPartition: target) == leaves["\(store.tenant)/\(store.name)"])
                }
            }
        }
    }
}
