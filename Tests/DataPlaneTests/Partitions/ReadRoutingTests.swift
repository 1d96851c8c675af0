import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// Reads and subscriptions take their routing decision from the same table as writes: a read
/// that needs a partition owned elsewhere, or one not in memory, is refused (503) rather than
/// answered from part of the map.
@Suite struct ReadRoutingTests {
    static let tenant: TenantID = "tn_route"

    @Test func aNodeOnItsOwnServesEveryReadHere() {
        let routing = ReadRouting(table: CurrentPartitionTable(localNode: PartitionRoutingTests.here), unloaded: UnloadedPartitions())
        #expect(routing.mapRead() == .local)
        #expect(routing.nameRead("anything", tenant: Self.tenant) == .local)
    }

    @Test func readsNeedingOtherOwnersNameThem() {
        let table = CurrentPartitionTable(localNode: PartitionRoutingTests.here, table: PartitionRoutingTests.threeOwners)
        let routing = ReadRouting(table: table, unloaded: UnloadedPartitions())
        #expect(routing.mapRead() == .remote([NodeID("node-b"), NodeID("node-c")]))
        for index in 0..<100 {
            let name = "lock-\(index)"
            let partition = PartitionFunction.partition(forKey: name, tenantID: Self.tenant.rawValue)
            let owner = PartitionRoutingTests.members[partition % 3].id
            #expect(routing.nameRead(name, tenant: Self.tenant) == (owner == PartitionRoutingTests.here ? .local : .remote([owner])))
        }
    }

    @Test func readsNeedingAPartitionNotInMemoryWaitForIt() async {
        let components = NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: "node-a"), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(),
            logger: quietLogger)
        let name = "likes"
        let partition = PartitionFunction.partition(forKey: name, tenantID: Self.tenant.rawValue)
        _ = await components.partitions.drop(partition)
        #expect(components.readRouting.mapRead() == .notLoaded(partition))
        #expect(components.readRouting.nameRead(name, tenant: Self.tenant) == .notLoaded(partition))
        #expect(components.readRouting.nameRead(Self.nameOutside(partition), tenant: Self.tenant) == .local)
    }

    static func nameOutside(_ partition: Int) -> String {
        (0...).lazy.map { "other-\($0)" }.first { PartitionFunction.partition(forKey: $0, tenantID: tenant.rawValue) != partition }!
    }

    /// Every read handler answers 503 naming the owner when it cannot serve the read here.
    @Test func everyReadHandlerRefusesWhatItCannotServe() async {
        let components = PartitionRoutingTests.services(peers: nil)
        let router = components.messageRouter
        let (outbound, stream) = SessionOutbound.make()
        var session = SessionState(outbound: outbound, rateLimiter: TokenBucket(capacity: 100, ratePerSecond: 100, nowNanos: 0))
        let context = PartitionRoutingTests.context
        let remoteName = (0...).lazy.map { "n\($0)" }.first { components.partitionTable.router.route(key: $0, tenant: Self.tenant.rawValue) != .local }!
        let messages: [TopGunMessage] = [
            .querySub(QuerySub(queryId: "q", mapName: "todos", query: Query())),
            .syncInit(SyncInit(mapName: "todos")),
            .merkleReqBucket(MerkleReqBucket(mapName: "todos", path: "")),
            .ormapSyncInit(ORMapSyncInit(mapName: "tags", rootHash: 0, bucketHashes: WireDictionary([]))),
            .ormapMerkleReqBucket(ORMapMerkleReqBucket(mapName: "tags", path: "")),
            .ormapDiffRequest(ORMapDiffRequest(mapName: "tags", keys: ["a"])),
            .counterRequest(CounterRequest(name: remoteName)),
            .lockRequest(LockRequest(requestId: "r", name: remoteName, ttl: 1_000)),
        ]
        for message in messages { await router.handle(message, context: context, session: &session) }
        outbound.finish()
        var errors: [ErrorMessage] = []
        var others: [String] = []
        for await item in stream {
            guard case .frame(let bytes) = item, let message = try? WireCodec().decode(bytes) else { continue }
            if case .errorMessage(let error) = message { errors.append(error) } else { others.append(message.type) }
        }
        #expect(others.isEmpty, "nothing answered from part of the grid: \(others)")
        #expect(errors.count == messages.count)
        #expect(errors.allSatisfy { $0.code == WireErrorCode.unavailable.rawValue })
        #expect(errors.allSatisfy { $0.message.contains("node-b") || $0.message.contains("node-c") })
    }

    @Test func httpSyncSaysWhichReadsItCannotServe() async {
        let components = PartitionRoutingTests.services(peers: nil)
        let request = HTTPSyncRequest(
            clientId: "c", clientHlc: Timestamp(millis: 1, counter: 0, nodeId: "c"),
            syncMaps: [HTTPSyncMap(mapName: "todos", lastSyncTimestamp: Timestamp(millis: 0, counter: 0, nodeId: ""))],
            queries: [HTTPSyncQuery(queryId: "q", mapName: "todos", filter: .object(DataObject()))])
        let response = await components.httpSync.process(request, context: PartitionRoutingTests.context)
        #expect(response.deltas?.isEmpty == true)
        #expect(response.queryResults?.isEmpty == true)
        #expect(response.errors?.map(\.code) == [WireErrorCode.unavailable.rawValue, WireErrorCode.unavailable.rawValue])
        #expect(response.errors?.map(\.context) == ["todos", "q"])
    }
}
