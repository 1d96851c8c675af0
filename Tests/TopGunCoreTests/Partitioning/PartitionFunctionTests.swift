import PropertyBased
import Testing
import TopGunCore

@Suite struct PartitionFunctionTests {
    @Test(arguments: [("hello", 95), ("key1", 268), ("", 199), ("user:alice", 91)])
    func clientPartitionVectors(key: String, partition: Int) {
        #expect(PartitionFunction.clientPartition(forKey: key) == partition)
    }

    @Test func tenantPartitionIsTheSumOfBothOffsetsModulo271() {
        // fnv("key1") % 271 = 268, fnv("hello") % 271 = 95 → (268 + 95) % 271 = 92
        #expect(PartitionFunction.tenantOffset("hello") == 95)
        #expect(PartitionFunction.partition(forKey: "key1", tenantID: "hello") == 92)
        // The largest hash cannot overflow: both terms are reduced before the sum.
        #expect(PartitionFunction.partition(forKey: "key1", tenantID: "key1") == (268 + 268) % 271)
    }

    @Test func rotationRoutesUnmodifiedClientsToTheRightPartition() async {
        let strings = Gen.letterOrNumber.string(of: 0...12)
        await propertyCheck(count: 500, input: strings, strings) { key, tenant in
            let server = PartitionFunction.partition(forKey: key, tenantID: tenant)
            let client = PartitionFunction.clientPartition(forKey: key)
            #expect((0..<271).contains(server))
            // The map a tenant's client receives names, at its own partition id, the owner
            // of the server partition that holds the key.
            #expect(PartitionFunction.serverPartition(forClientPartition: client, tenantID: tenant) == server)
            #expect(PartitionFunction.clientPartition(forServerPartition: server, tenantID: tenant) == client)
        }
    }
}
