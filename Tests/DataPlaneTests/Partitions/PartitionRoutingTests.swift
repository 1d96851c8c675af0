import Logging
import Synchronization
import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// Ownership decided in one place: a table with several owners routes each key to its
/// partition's owner; writes for partitions owned elsewhere go to that node (a test double
/// here), the rest are served locally.
@Suite struct PartitionRoutingTests {
    static let here = NodeID("node-a")
    static let members = ["node-a", "node-b", "node-c"].map { PartitionTable.Member(id: NodeID($0)) }

    /// Partition p owned by node p % 3, backed up by the next one, epoch p + 1.
    static let threeOwners = PartitionTable(
        version: 7, members: members,
        assignments: (0..<PartitionFunction.partitionCount).map { p in
            PartitionTable.Assignment(owner: members[p % 3].id, backups: [members[(p + 1) % 3].id], epoch: Int64(p + 1))
        })!

    @Test func aTableNeedsEveryPartitionAndKnownMembers() {
        let node = NodeID("n")
        #expect(PartitionTable(version: 1, members: [.init(id: node)], assignments: []) == nil)
        let stranger = PartitionTable.Assignment(owner: NodeID("elsewhere"), epoch: 1)
        #expect(PartitionTable(version: 1, members: [.init(id: node)], assignments: Array(repeating: stranger, count: 271)) == nil)
        let selfBackup = PartitionTable.Assignment(owner: node, backups: [node], epoch: 1)
        #expect(PartitionTable(version: 1, members: [.init(id: node)], assignments: Array(repeating: selfBackup, count: 271)) == nil)
        #expect(PartitionTable.singleNode(node).ownsEverything(node))
        #expect(PartitionTable.singleNode(node).version == 1)
    }

    @Test func eachKeyRoutesToItsPartitionsOwner() {
        let router = PartitionRouter(table: Self.threeOwners, localNode: Self.here)
        #expect(!router.ownsEverything)
        for index in 0..<500 {
            let key = "key-\(index)"
            let partition = PartitionFunction.partition(forKey: key, tenantID: "tn_route")
            let owner = Self.members[partition % 3].id
            #expect(router.route(key: key, tenant: "tn_route") == (owner == Self.here ? .local : .remote(owner)))
        }
        let keys = (0..<90).map { "k\($0)" }
        let split = router.split(Array(keys.indices), tenant: "tn_route") { keys[$0] }
        #expect(split.local.count + split.remote.values.reduce(0) { $0 + $1.count } == keys.count)
        #expect(Set(split.remote.keys).isSubset(of: [NodeID("node-b"), NodeID("node-c")]))
        #expect(split.local == split.local.sorted(), "batch order kept")
        for position in split.local { #expect(router.route(key: keys[position], tenant: "tn_route") == .local) }
        for (node, positions) in split.remote {
            for position in positions { #expect(router.route(key: keys[position], tenant: "tn_route") == .remote(node)) }
        }
        let plan = router.mapReadPlan()
        #expect(plan.localPartitions == (0..<271).filter { $0 % 3 == 0 })
        #expect(plan.remoteNodes == [NodeID("node-b"), NodeID("node-c")])
    }

    @Test func aNodeOnItsOwnServesEverythingHere() {
        let router = CurrentPartitionTable(localNode: Self.here).router
        #expect(router.ownsEverything)
        #expect(router.route(key: "anything", tenant: "t") == .local)
        #expect(router.mapReadPlan().remoteNodes.isEmpty)
    }

    @Test func onlyANewerTableReplacesTheCurrentOne() {
        let current = CurrentPartitionTable(localNode: Self.here)
        #expect(current.install(Self.threeOwners))
        #expect(!current.install(.singleNode(Self.here)), "version 1 is older than 7")
        #expect(current.table.version == 7)
        #expect(!current.router.ownsEverything)
    }

    @Test func partitionMapIsBuiltFromTheTableThroughTheTenantsRotation() {
        let tenant: TenantID = "tn_rotated"
        let map = PartitionMapHandler.partitionMap(
            table: Self.threeOwners, tenant: tenant, localNode: Self.here,
            localEndpoints: NodeEndpoints(websocket: "ws://a", http: "http://a"), generatedAt: 5)
        #expect(map.version == 7)
        #expect(map.nodes.map(\.nodeId) == ["node-a", "node-b", "node-c"])
        #expect(map.nodes.first?.endpoints.websocket == "ws://a")
        #expect(map.partitions.count == 271)
        // An unmodified client routes `key` by fnv1a(key) % 271 and must reach the owner.
        for index in 0..<300 {
            let key = "doc-\(index)"
            let entry = map.partitions[PartitionFunction.clientPartition(forKey: key)]
            let server = PartitionFunction.partition(forKey: key, tenantID: tenant.rawValue)
            #expect(entry.ownerNodeId == Self.threeOwners.owner(of: server).rawValue)
            #expect(entry.backupNodeIds == Self.threeOwners.assignment(of: server).backups.map(\.rawValue))
        }
    }

    // MARK: - The write path's remote branch

    /// Records what it is asked, answers every op as applied (or fails).
    final class PeersDouble: PartitionPeers {
        let asked = Mutex<[(node: NodeID, keys: [String], tenant: TenantID)]>([])
        let fails: Bool
        init(fails: Bool = false) { self.fails = fails }

        func applyWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, on node: NodeID, context: RequestContext) async throws -> [OpOutcome] {
            asked.withLock { $0.append((node, ops.map(\.key), context.tenant)) }
            if fails { throw CancellationError() }
            return ops.map { _ in .applied }
        }

        func pushORMapEntries(_ entries: [ORMapEntry], mapName: String, on node: NodeID, context: RequestContext) async throws -> OpOutcome {
            asked.withLock { $0.append((node, entries.map(\.key), context.tenant)) }
            if fails { throw CancellationError() }
            return .applied
        }
    }

    static func services(peers: (any PartitionPeers)?) -> NodeComponents {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let table = CurrentPartitionTable(localNode: here, table: threeOwners)
        return NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: here.rawValue), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(),
            logger: logger, partitionTable: table, peers: peers)
    }

    static let context = RequestContext(tenant: "tn_route", principal: "user", roles: [], requestId: "r1", keyId: "key_1")

    @Test func writesForOtherOwnersGoToThemAndTheRestAreAppliedHere() async {
        let peers = PeersDouble()
        let services = Self.services(peers: peers)
        let ops = MapPartitionTests.puts(60)
        let outcome = await services.writePath.apply(ops, batchConcern: .applied, context: Self.context, writer: nil)
        #expect(outcome.refusal == nil)
        #expect(outcome.outcomes.allSatisfy { $0.success })
        let router = services.partitionTable.router
        let localKeys = ops.map(\.key).filter { router.route(key: $0, tenant: "tn_route") == .local }
        #expect(!localKeys.isEmpty)
        #expect(await services.maps.existingStore(tenant: "tn_route", name: "todos")?.recordCount == localKeys.count)
        let asked = peers.asked.withLock { $0 }
        #expect(Set(asked.map(\.node)) == [NodeID("node-b"), NodeID("node-c")])
        for call in asked {
            #expect(call.tenant == "tn_route")
            for key in call.keys { #expect(router.route(key: key, tenant: "tn_route") == .remote(call.node)) }
        }
        #expect(asked.reduce(0) { $0 + $1.keys.count } + localKeys.count == ops.count)
    }

    @Test func withoutAWayToTheOwnerNothingIsAppliedOrAcknowledged() async {
        let services = Self.services(peers: nil)
        let outcome = await services.writePath.apply(MapPartitionTests.puts(30), batchConcern: .applied, context: Self.context, writer: nil)
        #expect(outcome.refusal?.code == WireErrorCode.unavailable.rawValue)
        #expect(services.maps.existingStore(tenant: "tn_route", name: "todos") == nil)
    }

    @Test func anOwnerThatDoesNotAnswerLeavesTheBatchUnacknowledged() async {
        let peers = PeersDouble(fails: true)
        let services = Self.services(peers: peers)
        let outcome = await services.writePath.apply(MapPartitionTests.puts(30), batchConcern: .applied, context: Self.context, writer: nil)
        #expect(outcome.refusal?.code == WireErrorCode.unavailable.rawValue)
        #expect(!peers.asked.withLock { $0 }.isEmpty)
        // Asked before anything was applied here: nothing to be lost when the client re-sends.
        #expect(services.maps.existingStore(tenant: "tn_route", name: "todos") == nil)
    }

    /// A dropped partition takes no write until it is loaded again: merged into an empty
    /// part, a write would be stored as if nothing came before it.
    @Test func aDroppedPartitionTakesNoWriteUntilReloaded() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let storage = MemoryServerStorage()
        let services = NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: "solo"), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(), logger: logger)
        let written = await services.maps.store(tenant: "tn_route", name: "todos").apply(MapPartitionTests.puts(30), writer: nil, nowMillis: 0)
        try await storage.store(written.changedRecords)
        let partition = PartitionFunction.partition(forKey: "k3", tenantID: "tn_route")
        await services.partitions.drop(partition)
        let older = MapStoreTests.put("k3", "older", MapStoreTests.ts(1))
        let refused = await services.writePath.apply([older], batchConcern: .applied, context: Self.context, writer: nil)
        #expect(refused.refusal?.code == WireErrorCode.unavailable.rawValue)
        // Other partitions take writes meanwhile.
        let elsewhere = MapPartitionTests.puts(30).first { PartitionFunction.partition(forKey: $0.key, tenantID: "tn_route") != partition }!
        #expect(await services.writePath.apply([elsewhere], batchConcern: .applied, context: Self.context, writer: nil).refusal == nil)

        try await services.partitions.load(partition, from: storage)
        let after = await services.writePath.apply([older], batchConcern: .applied, context: Self.context, writer: nil)
        #expect(after.refusal == nil)
        // The stored, newer record won: the older write changed nothing.
        let records = await services.maps.existingStore(tenant: "tn_route", name: "todos")!.records(inPartition: partition)
        let k3 = records.first { $0.key.key == "k3" }
        guard case .lww(let record) = k3?.value else { Issue.record("k3 missing"); return }
        #expect(record.value == .int(3))
    }

    @Test func pushedOrMapEntriesGoToTheirOwnersToo() async {
        let peers = PeersDouble()
        let services = Self.services(peers: peers)
        let dispatcher = services.messageRouter
        let (outbound, stream) = SessionOutbound.make()
        var session = SessionState(outbound: outbound, rateLimiter: TokenBucket(capacity: 100, ratePerSecond: 100, nowNanos: 0))
        let entries = (0..<40).map { index in
            let ts = Timestamp(millis: 100 + Int64(index), counter: 0, nodeId: "c")
            return ORMapEntry(key: "tag\(index)", records: [ORMapRecord(value: .int(Int64(index)), timestamp: ts, tag: ts.description)], tombstones: [])
        }
        await dispatcher.handle(.ormapPushDiff(ORMapPushDiff(mapName: "tags", entries: entries)), context: Self.context, session: &session)
        outbound.finish()
        let router = services.partitionTable.router
        let asked = peers.asked.withLock { $0 }
        let localKeys = entries.map(\.key).filter { router.route(key: $0, tenant: "tn_route") == .local }
        #expect(asked.reduce(0) { $0 + $1.keys.count } + localKeys.count == entries.count)
        for call in asked {
            for key in call.keys { #expect(router.route(key: key, tenant: "tn_route") == .remote(call.node)) }
        }
        #expect(await services.maps.existingStore(tenant: "tn_route", name: "tags")?.recordCount == localKeys.count)
        var errors = 0
        for await item in stream { if case .frame = item { errors += 1 } }
        #expect(errors == 0, "no error answered")
    }

    // MARK: - Refused batches and the client's reading of OP_ACK

    /// Fails while `failing` is set, else applies.
    final class SwitchablePeers: PartitionPeers {
        let failing = Mutex(true)

        func applyWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, on node: NodeID, context: RequestContext) async throws -> [OpOutcome] {
            if failing.withLock({ $0 }) { throw CancellationError() }
            return ops.map { _ in .applied }
        }

        func pushORMapEntries(_ entries: [ORMapEntry], mapName: String, on node: NodeID, context: RequestContext) async throws -> OpOutcome {
            .applied
        }
    }

    /// An `OP_ACK` covers every earlier op of its connection, in the client's reading: after a
    /// batch is refused whole (its owner did not answer), a later batch of the same connection
    /// is refused too until the refused batch comes again, so no ack can cover it.
    @Test func afterAWholeBatchIsRefusedLaterBatchesWaitForItToComeAgain() async {
        let peers = SwitchablePeers()
        let services = Self.services(peers: peers)
        let session = SessionID.next()
        let router = services.partitionTable.router
        let ops = MapPartitionTests.puts(60)
        let remote = ops.filter { router.route(key: $0.key, tenant: "tn_route") != .local }
        let local = ops.filter { router.route(key: $0.key, tenant: "tn_route") == .local }
        #expect(!remote.isEmpty && !local.isEmpty)
        let first = await services.writePath.apply(remote, batchConcern: .applied, context: Self.context, writer: session)
        #expect(first.refusal?.code == WireErrorCode.unavailable.rawValue)
        // A later batch, all local, is refused rather than acknowledged.
        let second = await services.writePath.apply(local, batchConcern: .applied, context: Self.context, writer: session)
        #expect(second.refusal?.code == WireErrorCode.unavailable.rawValue)
        #expect(services.maps.existingStore(tenant: "tn_route", name: "todos") == nil, "nothing applied")
        // Another connection is not held back.
        let other = await services.writePath.apply(local, batchConcern: .applied, context: Self.context, writer: SessionID.next())
        #expect(other.refusal == nil)
        // Once the refused batch comes again (and goes through), the connection goes on.
        peers.failing.withLock { $0 = false }
        let again = await services.writePath.apply(remote, batchConcern: .applied, context: Self.context, writer: session)
        #expect(again.refusal == nil)
        let after = await services.writePath.apply(local, batchConcern: .applied, context: Self.context, writer: session)
        #expect(after.refusal == nil)
    }

    /// A forwarded batch for a partition the receiver no longer owns is refused, not forwarded
    /// again: no request travels in a loop.
    @Test func aForwardedBatchIsNeverForwardedAgain() async {
        let peers = PeersDouble()
        let services = Self.services(peers: peers)
        let outcome = await services.writePath.apply(MapPartitionTests.puts(30), batchConcern: .applied, context: Self.context, writer: nil, forwarded: true)
        #expect(outcome.refusal?.code == WireErrorCode.unavailable.rawValue)
        #expect(peers.asked.withLock { $0 }.isEmpty)
        #expect(services.maps.existingStore(tenant: "tn_route", name: "todos") == nil)
    }
}
