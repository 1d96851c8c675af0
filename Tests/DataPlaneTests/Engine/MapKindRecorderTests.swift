import Logging
import Metadata
import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// A map's kind is fixed once per tenant and map in the shared metadata store: two nodes
/// whose first writes differ agree, and each refuses writes of the other kind.
@Suite struct MapKindRecorderTests {
    static func node(_ id: String, metadata: any MetadataStore) -> NodeComponents {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: id), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(),
            logger: logger, policies: TenantPolicies(metadata: metadata, logger: logger))
    }

    static func orAdd(_ key: String, map: String) -> ClientOp {
        let ts = Timestamp(millis: 10, counter: 0, nodeId: "c2")
        return ClientOp(id: "2", mapName: map, key: key, opType: "OR_ADD", orRecord: ORMapRecord(value: "x", timestamp: ts, tag: ts.description))
    }

    static func put(_ key: String, map: String) -> ClientOp {
        ClientOp(id: "1", mapName: map, key: key, opType: "PUT", record: LWWRecord(value: "v", timestamp: Timestamp(millis: 5, counter: 0, nodeId: "c1")))
    }

    @Test func twoNodesWhoseFirstWritesDifferAgreeOnTheFirstRecordedKind() async throws {
        let metadata = try await SQLiteMetadataStore.open(.memory, masterKey: Array(repeating: 7, count: 32), logger: quietLogger)
        try await metadata.migrate()
        let tenant = try await metadata.createTenant(slug: "kinds", displayName: "Kinds", plan: "free").id
        let context = RequestContext(tenant: tenant, principal: "u", roles: [], requestId: "r", keyId: "k")
        let a = Self.node("node-a", metadata: metadata)
        let b = Self.node("node-b", metadata: metadata)

        // Node A sees an LWW put first; node B, which has never seen the map, an OR_ADD.
        let first = await a.writePath.apply([Self.put("k", map: "notes")], batchConcern: .applied, context: context, writer: nil)
        #expect(first.outcomes.allSatisfy { $0.success })
        let second = await b.writePath.apply([Self.orAdd("k", map: "notes")], batchConcern: .applied, context: context, writer: nil)
        #expect(second.outcomes.first?.success == false)
        #expect(second.outcomes.first?.code == .badRequest)
        #expect(await b.maps.existingStore(tenant: tenant, name: "notes")?.kind == .lww)
        // B adopted the recorded kind without any write of that kind.
        #expect(b.maps.existingStore(tenant: tenant, name: "notes")?.recordedKind == .lww)

        // The other way round on another map: B's OR_ADD first, then A's put is refused.
        _ = await b.writePath.apply([Self.orAdd("t", map: "tags")], batchConcern: .applied, context: context, writer: nil)
        let refused = await a.writePath.apply([Self.put("t", map: "tags")], batchConcern: .applied, context: context, writer: nil)
        #expect(refused.outcomes.first?.success == false)
        #expect(try await metadata.recordMapKind(tenant: tenant, map: "tags", kind: .lww) == .orMap)
        await metadata.shutdown()
    }

    /// A map this node already holds (loaded from storage before kinds were recorded) proposes
    /// what it holds, whatever the first write after the upgrade is.
    @Test func aMapThatHoldsRecordsProposesItsOwnKind() async throws {
        let metadata = try await SQLiteMetadataStore.open(.memory, masterKey: Array(repeating: 7, count: 32), logger: quietLogger)
        try await metadata.migrate()
        let tenant = try await metadata.createTenant(slug: "held", displayName: "Held", plan: "free").id
        let context = RequestContext(tenant: tenant, principal: "u", roles: [], requestId: "r", keyId: "k")
        let node = Self.node("node-a", metadata: metadata)
        await node.maps.store(tenant: tenant, name: "notes").restore([
            StoredRecord(key: StorageKey(tenant: tenant, mapName: "notes", key: "k"), partition: 0,
                         value: .lww(LWWRecord(value: "old", timestamp: Timestamp(millis: 1, counter: 0, nodeId: "c1")))),
        ])
        // A stray OR op first: refused, and the map stays LWW for every node.
        let stray = await node.writePath.apply([Self.orAdd("x", map: "notes")], batchConcern: .applied, context: context, writer: nil)
        #expect(stray.outcomes.first?.success == false)
        #expect(try await metadata.recordMapKind(tenant: tenant, map: "notes", kind: .orMap) == .lww)
        // An op that no map accepts (a put without a record) proposes nothing.
        let empty = ClientOp(id: "e", mapName: "fresh", key: "k", opType: "PUT")
        _ = await node.writePath.apply([empty], batchConcern: .applied, context: context, writer: nil)
        #expect(try await metadata.recordMapKind(tenant: tenant, map: "fresh", kind: .orMap) == .orMap)
        await metadata.shutdown()
    }

    @Test func withoutAMetadataStoreTheFirstWriteHereDecides() async {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let services = NodeComponents(
            configuration: DataPlaneConfiguration(nodeId: "solo"), durability: MemoryOnlyDurability(), authenticator: RefusingAuthenticator(), logger: logger)
        let context = RequestContext(tenant: "tn_solo", principal: "u", roles: [], requestId: "r", keyId: "k")
        _ = await services.writePath.apply([Self.orAdd("k", map: "m")], batchConcern: .applied, context: context, writer: nil)
        let refused = await services.writePath.apply([Self.put("k", map: "m")], batchConcern: .applied, context: context, writer: nil)
        #expect(refused.outcomes.first?.success == false)
        #expect(services.maps.existingStore(tenant: "tn_solo", name: "m")?.recordedKind == nil)
    }
}
