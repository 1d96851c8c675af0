import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

@Suite struct MapStoreTests {
    static func ts(_ millis: Int64, _ node: String = "c1", _ counter: Int64 = 0) -> Timestamp {
        Timestamp(millis: millis, counter: counter, nodeId: node)
    }

    static func put(_ key: String, _ value: DataValue?, _ ts: Timestamp, id: String = "1") -> ClientOp {
        ClientOp(id: id, mapName: "todos", key: key, opType: value == nil ? "REMOVE" : "PUT", record: LWWRecord(value: value, timestamp: ts))
    }

    static func makeStore(_ tenant: TenantID = "tn_a") -> MapStore {
        MapStore(tenant: tenant, name: "todos", clock: NodeClock(nodeId: "server"))
    }

    /// Collects what a session receives.
    static func receive(_ stream: AsyncStream<SessionOutbound.Item>, count: Int) async -> [TopGunMessage] {
        var messages: [TopGunMessage] = []
        for await item in stream {
            if case .frame(let bytes) = item, let message = try? WireCodec().decode(bytes) { messages.append(message) }
            if messages.count == count { break }
        }
        return messages
    }

    @Test func writesMergeKeepingClientTimestampsAndReportChangedRecords() async {
        let store = Self.makeStore()
        let result = await store.apply([Self.put("k", "v1", Self.ts(100))], writer: nil, nowMillis: 0)
        #expect(result.outcomes == [.applied])
        #expect(result.changedRecords.count == 1)
        guard case .lww(let record) = result.changedRecords.first?.value else { Issue.record("no LWW record"); return }
        #expect(record.timestamp == Self.ts(100))
        #expect(result.changedRecords.first?.partition == PartitionFunction.partition(forKey: "k", tenantID: "tn_a"))
        // Re-delivery: acknowledged, nothing changes, nothing to persist.
        let again = await store.apply([Self.put("k", "v1", Self.ts(100))], writer: nil, nowMillis: 0)
        #expect(again.outcomes == [.applied])
        #expect(again.changedRecords.isEmpty)
        #expect(again.journal.isEmpty)
    }

    @Test func orOpsOnAnLWWMapAreRejectedForGood() async {
        let store = Self.makeStore()
        _ = await store.apply([Self.put("k", "v", Self.ts(1))], writer: nil, nowMillis: 0)
        let orOp = ClientOp(id: "2", mapName: "todos", key: "k", opType: "OR_ADD", orRecord: ORMapRecord(value: "x", timestamp: Self.ts(2), tag: "2:0:c1"))
        let result = await store.apply([orOp], writer: nil, nowMillis: 0)
        #expect(result.outcomes.first?.success == false)
        #expect(result.outcomes.first?.code == .badRequest)
    }

    @Test func opWithoutRecordIsRejected() async {
        let store = Self.makeStore()
        let result = await store.apply([ClientOp(id: "1", mapName: "todos", key: "k", opType: "PUT")], writer: nil, nowMillis: 0)
        #expect(result.outcomes.first?.success == false)
    }

    @Test func journalClassifiesPutUpdateAndDelete() async {
        let store = Self.makeStore()
        let r1 = await store.apply([Self.put("k", "a", Self.ts(1))], writer: nil, nowMillis: 0)
        let r2 = await store.apply([Self.put("k", "b", Self.ts(2))], writer: nil, nowMillis: 0)
        let r3 = await store.apply([Self.put("k", nil, Self.ts(3))], writer: nil, nowMillis: 0)
        #expect(r1.journal.map(\.type) == [.put])
        #expect(r2.journal.map(\.type) == [.update])
        #expect(r2.journal.first?.previousValue?.dataValue == "a")
        #expect(r3.journal.map(\.type) == [.delete])
    }

    /// Packed values (as OP_BATCH's decoder keeps them) and decoded ones reach the journal
    /// alike: its events read back the values written and replaced.
    @Test func journalKeepsPackedAndDecodedValues() async {
        let store = Self.makeStore()
        let first: DataValue = ["title": "caf\u{e9}", "n": 1, "tags": ["a", "b"]]
        let second: DataValue = ["title": "second", "n": 2.5]
        let packed = ClientOp(
            id: "1", mapName: "todos", key: "k", opType: "PUT",
            record: LWWRecord(payload: .packed(MessagePackFormat.pack(first)), timestamp: Self.ts(1)))
        _ = await store.apply([packed], writer: nil, nowMillis: 0)
        let result = await store.apply([Self.put("k", second, Self.ts(2)), Self.put("other", "x", Self.ts(3), id: "2")], writer: nil, nowMillis: 0)
        let journal = EventJournal(nodeId: "server")
        journal.append(result.journal, mapName: "todos", tenant: "tn_a")
        let events = journal.read(tenant: "tn_a", fromSequence: 1, limit: 10, mapName: nil).events
        #expect(events.map(\.value) == [second, "x"])
        #expect(events.map(\.previousValue) == [first, nil])
        #expect(events.map(\.key) == ["k", "other"])
    }

    @Test func watchersOtherThanTheWriterGetServerEventsAndQueryUpdates() async throws {
        let store = Self.makeStore()
        let (watcher, stream) = SessionOutbound.make()
        let morePages = await store.subscribe(QuerySub(queryId: "q1", mapName: "todos", query: Query()), subscriber: watcher, nowMillis: 0)
        #expect(!morePages)
        // The watcher's own write produces no SERVER_EVENT for it, but its query still updates.
        _ = await store.apply([Self.put("mine", "x", Self.ts(1))], writer: watcher.id, nowMillis: 0)
        _ = await store.apply([Self.put("theirs", "y", Self.ts(2))], writer: SessionID(rawValue: 999_999), nowMillis: 0)
        let messages = await Self.receive(stream, count: 4)
        #expect(messages.count == 4)
        guard case .queryResp(let response) = messages[0], case .queryUpdate(let first) = messages[1], case .serverEvent(let event) = messages[2],
            case .queryUpdate(let second) = messages[3]
        else {
            Issue.record("unexpected messages \(messages)")
            return
        }
        #expect(response.results.isEmpty)
        #expect(first.key == "mine" && first.changeType == .enter)
        #expect(event.payload.key == "theirs")
        #expect(event.payload.record?.timestamp == Self.ts(2))
        #expect(event.timestamp != nil)
        #expect(second.key == "theirs" && second.changeType == .enter)
    }

    @Test func sessionWithoutLiveQueriesGetsNoEvents() async {
        let store = Self.makeStore()
        let (watcher, stream) = SessionOutbound.make()
        _ = await store.subscribe(QuerySub(queryId: "q1", mapName: "todos", query: Query()), subscriber: watcher, nowMillis: 0)
        #expect(await store.unsubscribe(queryId: "q1", session: watcher.id))
        _ = await store.apply([Self.put("k", "v", Self.ts(1))], writer: nil, nowMillis: 0)
        watcher.finish()
        var frames = 0
        for await _ in stream { frames += 1 }
        #expect(frames == 1)  // the QUERY_RESP, nothing after it
    }

    @Test func aLargeFirstResultIsSentInPagesThatTogetherHoldEveryRow() async {
        let store = Self.makeStore()
        let value: DataValue = .string(String(repeating: "v", count: 1000))
        let ops = (0..<200).map { Self.put("k\($0)", value, Self.ts(100 + Int64($0)), id: "\($0)") }
        _ = await store.apply(ops, writer: nil, nowMillis: 0)
        let (watcher, stream) = SessionOutbound.make(capacity: 1000)
        let pageBytes = 16 * 1024
        var more = await store.subscribe(QuerySub(queryId: "q1", mapName: "todos", query: Query()), subscriber: watcher, nowMillis: 0, pageBytes: pageBytes)
        #expect(more)
        var pages = 0
        while more {
            more = await store.sendNextResultPage(queryId: "q1", session: watcher.id, maxBytes: pageBytes)
            pages += 1
        }
        // A write after delivery reaches the subscriber as usual.
        _ = await store.apply([Self.put("k5", "changed", Self.ts(10_000))], writer: nil, nowMillis: 0)
        watcher.finish()
        var keys = Set<String>()
        var respRows = 0
        var updates: [QueryUpdate] = []
        for await item in stream {
            guard case .frame(let bytes) = item else { continue }
            #expect(bytes.count <= pageBytes + 1024)
            switch try? WireCodec().decode(bytes) {
            case .queryResp(let response)?:
                respRows = response.results.count
                for row in response.results { keys.insert(row.key) }
            case .queryUpdate(let update)?:
                updates.append(update)
                if update.changeType == .enter { keys.insert(update.key) }
            default: break
            }
        }
        #expect(respRows > 0 && respRows < 200)
        #expect(pages >= 2)
        #expect(keys.count == 200)
        #expect(updates.last?.key == "k5" && updates.last?.changeType == .update && updates.last?.value == "changed")
    }

    @Test func changesGetSequencesAndHTTPDeltasFollowThemInPages() async {
        let store = Self.makeStore()
        // Timestamps in any order: the client of the second write stamped it far in the past.
        _ = await store.apply([Self.put("a", "1", Self.ts(5_000))], writer: nil, nowMillis: 1_000)
        var delta = await store.lwwDelta(after: .start, maxBytes: 1 << 20)
        #expect(delta.records.map(\.key) == ["a"])
        let position = delta.next
        _ = await store.apply([Self.put("b", "2", Self.ts(10))], writer: nil, nowMillis: 1_001)
        delta = await store.lwwDelta(after: SyncPosition(timestamp: position.timestamp(nowMillis: 9)), maxBytes: 1 << 20)
        #expect(delta.records.map(\.key) == ["b"])  // older timestamp, later change: still new
        // Paged: one record per answer, every record once.
        let many = (0..<20).map { Self.put("m\($0)", "x", Self.ts(20_000 + Int64($0)), id: "\($0)") }
        _ = await store.apply(many, writer: nil, nowMillis: 1_002)
        var seen: [String] = []
        var next = delta.next
        for _ in 0..<40 {
            let page = await store.lwwDelta(after: next, maxBytes: 1)
            if page.records.isEmpty { break }
            #expect(page.records.count == 1)
            seen += page.records.map(\.key)
            next = page.next
        }
        #expect(seen.sorted() == (0..<20).map { "m\($0)" }.sorted())
        let changed = await store.apply([Self.put("a", "3", Self.ts(6_000))], writer: nil, nowMillis: 1_003)
        #expect(changed.changedRecords.first?.sequence ?? 0 > 0)
    }

    @Test func merkleBucketsLeadToLeavesWithTombstones() async {
        let store = Self.makeStore()
        _ = await store.apply([Self.put("key1", "v", Self.ts(100, "test")), Self.put("key1", nil, Self.ts(200, "test"))], writer: nil, nowMillis: 0)
        #expect(await store.lwwRootHash() != 0)
        guard case .syncRespBuckets(let root) = await store.lwwBucket(path: "") else { Issue.record("expected buckets"); return }
        #expect(root.buckets.entries.map(\.key) == ["3"])
        guard case .syncRespLeaf(let leaf) = await store.lwwBucket(path: "374") else { Issue.record("expected a leaf"); return }
        #expect(leaf.records.map(\.key) == ["key1"])
        #expect(leaf.records.first?.record.isTombstone == true)
        guard case .syncRespBuckets(let unknown) = await store.lwwBucket(path: "zz") else { Issue.record("expected buckets"); return }
        #expect(unknown.buckets.entries.isEmpty)
    }

    @Test func orAddAndRemoveBuildEntriesWithTombstones() async {
        let store = MapStore(tenant: "tn_a", name: "tags", clock: NodeClock(nodeId: "server"))
        let record = ORMapRecord(value: "red", timestamp: Self.ts(10), tag: "10:0:c1")
        let add = ClientOp(id: "1", mapName: "tags", key: "t", opType: "OR_ADD", orRecord: record)
        let remove = ClientOp(id: "2", mapName: "tags", key: "t", opType: "OR_REMOVE", orTag: "10:0:c1")
        let added = await store.apply([add], writer: nil, nowMillis: 0)
        #expect(added.changedRecords.count == 1)
        // One entry: the root is the entry hash mixed once per level (protocol.md §11.3).
        let entryHash = MerkleEntryHash.orMap(key: "t", records: [record])
        #expect(await store.orRootHash() == Hashing.mix(Hashing.mix(Hashing.mix(Hashing.mix(entryHash)))))
        let removed = await store.apply([remove], writer: nil, nowMillis: 0)
        guard case .orMap(let entry) = removed.changedRecords.first?.value else { Issue.record("no OR entry"); return }
        #expect(entry.records.isEmpty)
        #expect(entry.tombstones == ["10:0:c1"])
        #expect(await store.orRootHash() == 0)
    }

    @Test func restoreInstallsStoredStateWithoutEvents() async {
        let store = Self.makeStore()
        let stored = StoredRecord(key: StorageKey(tenant: "tn_a", mapName: "todos", key: "k"), partition: 0, value: .lww(LWWRecord(value: "v", timestamp: Self.ts(5))))
        await store.restore([stored])
        #expect(await store.kind == .lww)
        #expect(await store.queryRecords(nowMillis: 0) == [QueryRecord(key: "k", value: "v")])
    }

    /// Keys and map names are the client's JavaScript strings, and storage's bytes: a
    /// composed and a decomposed "é" are two keys, each persisted, and two maps.
    @Test func canonicallyEquivalentKeysAreTwoRecordsAndTwoRows() async {
        let store = Self.makeStore()
        let result = await store.apply(
            [Self.put("\u{e9}", "composed", Self.ts(1), id: "1"), Self.put("e\u{301}", "decomposed", Self.ts(2), id: "2")], writer: nil, nowMillis: 0)
        #expect(result.outcomes == [.applied, .applied])
        #expect(await store.recordCount == 2)
        let rows = result.changedRecords.map(\.key.key)
        #expect(rows.count == 2)
        #expect(rows.contains { $0.hasSameUTF8(as: "\u{e9}") } && rows.contains { $0.hasSameUTF8(as: "e\u{301}") })
        // Both rows are new: inserts, not upserts of each other.
        #expect(result.changedRecords.allSatisfy { !$0.mayExistInStorage })

        let orStore = MapStore(tenant: "tn_a", name: "sets", clock: NodeClock(nodeId: "server"))
        let orOps = ["\u{e9}", "e\u{301}"].enumerated().map { index, key in
            ClientOp(id: String(index), mapName: "sets", key: key, opType: "OR_ADD", orRecord: ORMapRecord(value: "x", timestamp: Self.ts(1), tag: "1:\(index):c1"))
        }
        let orResult = await orStore.apply(orOps, writer: nil, nowMillis: 0)
        #expect(orResult.changedRecords.count == 2)
        #expect(await orStore.recordCount == 2)

        let directory = MapDirectory(clocks: TenantClocks(nodeId: "server"))
        let composed = directory.store(tenant: "tn_a", name: "caf\u{e9}")
        let decomposed = directory.store(tenant: "tn_a", name: "cafe\u{301}")
        #expect(composed !== decomposed)
        #expect(directory.store(tenant: "tn_a", name: "caf\u{e9}") === composed)
    }
}
