import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

@Suite struct EventJournalTests {
    static let tenant: TenantID = "tn_journal"

    static func drafts(_ keys: [String], type: JournalEventType = .put, nodeIds: [String] = ["c1"]) -> JournalDrafts {
        var drafts = JournalDrafts()
        for (index, key) in keys.enumerated() {
            let nodeId = nodeIds[index % nodeIds.count]
            drafts.append(type: type, key: key, value: .decoded(.int(Int64(index))), previousValue: nil, timestamp: Timestamp(millis: 1_000 + Int64(index), counter: 7, nodeId: nodeId))
        }
        return drafts
    }

    @Test func eventsKeepTheirTimestampsWhenABatchMixesNodeIds() {
        let journal = EventJournal(nodeId: "n1")
        let drafts = Self.drafts(["a", "b", "c"], nodeIds: ["writer-1", "writer-2", "writer-1"])
        #expect(drafts.nodeId == "writer-1")
        #expect(drafts.map(\.otherNodeId) == [nil, "writer-2", nil])
        journal.append(drafts, mapName: "todos", tenant: Self.tenant)
        let events = journal.read(tenant: Self.tenant, fromSequence: 0, limit: 10, mapName: nil).events
        #expect(events.map(\.timestamp) == [
            Timestamp(millis: 1_000, counter: 7, nodeId: "writer-1"), Timestamp(millis: 1_001, counter: 7, nodeId: "writer-2"),
            Timestamp(millis: 1_002, counter: 7, nodeId: "writer-1"),
        ])
    }

    static func keys(_ events: [JournalEvent]) -> [String] { events.map(\.key) }

    @Test func sequencesCountUpFromOneAcrossBatchesAndMaps() {
        let journal = EventJournal(nodeId: "n1")
        journal.append(Self.drafts(["a", "b"]), mapName: "todos", tenant: Self.tenant)
        journal.append(Self.drafts(["c"]), mapName: "notes", tenant: Self.tenant)
        let (events, hasMore) = journal.read(tenant: Self.tenant, fromSequence: 0, limit: 10, mapName: nil)
        #expect(events.map(\.sequence) == ["1", "2", "3"])
        #expect(events.map(\.mapName) == ["todos", "todos", "notes"])
        #expect(events.allSatisfy { $0.nodeId == "n1" })
        #expect(!hasMore)
    }

    @Test func longAndShortKeysComeBackAsTheyWereWritten() {
        let journal = EventJournal(nodeId: "n1")
        let keys = ["short", String(repeating: "k", count: 32), String(repeating: "l", count: 33) + "-long", "e\u{301}"]
        journal.append(Self.drafts(keys), mapName: "todos", tenant: Self.tenant)
        let read = journal.read(tenant: Self.tenant, fromSequence: 0, limit: 10, mapName: nil).events.map { Array($0.key.utf8) }
        #expect(read == keys.map { Array($0.utf8) })
    }

    @Test func readsFromASequenceWithALimitAndAMapFilter() {
        let journal = EventJournal(nodeId: "n1")
        journal.append(Self.drafts(["a", "b", "c"]), mapName: "todos", tenant: Self.tenant)
        journal.append(Self.drafts(["x"]), mapName: "notes", tenant: Self.tenant)
        journal.append(Self.drafts(["d", "e"]), mapName: "todos", tenant: Self.tenant)
        let page = journal.read(tenant: Self.tenant, fromSequence: 2, limit: 2, mapName: nil)
        #expect(Self.keys(page.events) == ["b", "c"])
        #expect(page.hasMore)
        let todos = journal.read(tenant: Self.tenant, fromSequence: 3, limit: 10, mapName: "todos")
        #expect(Self.keys(todos.events) == ["c", "d", "e"])
        #expect(todos.events.map(\.sequence) == ["3", "5", "6"])
        #expect(!todos.hasMore)
    }

    @Test func keepsExactlyTheLastCapacityEventsWhateverTheBatchSizes() {
        let journal = EventJournal(nodeId: "n1", capacity: 5)
        var all: [String] = []
        // Batches of 1, 2 and 3 events: chunks never line up with the capacity.
        for batch in 0..<12 {
            let keys = (0..<(batch % 3 + 1)).map { "k\(batch)-\($0)" }
            all += keys
            journal.append(Self.drafts(keys), mapName: "todos", tenant: Self.tenant)
            let (events, hasMore) = journal.read(tenant: Self.tenant, fromSequence: 0, limit: 100, mapName: nil)
            #expect(Self.keys(events) == Array(all.suffix(5)))
            #expect(events.map(\.sequence) == ((max(0, all.count - 5) + 1)...all.count).map(String.init))
            #expect(!hasMore)
        }
    }

    @Test func aBatchLargerThanTheCapacityKeepsItsLastEvents() {
        let journal = EventJournal(nodeId: "n1", capacity: 3)
        journal.append(Self.drafts(["a", "b", "c", "d", "e"]), mapName: "todos", tenant: Self.tenant)
        #expect(Self.keys(journal.read(tenant: Self.tenant, fromSequence: 0, limit: 10, mapName: nil).events) == ["c", "d", "e"])
        journal.append(Self.drafts(["f"]), mapName: "todos", tenant: Self.tenant)
        #expect(Self.keys(journal.read(tenant: Self.tenant, fromSequence: 0, limit: 10, mapName: nil).events) == ["d", "e", "f"])
    }

    @Test func longRunsStayBoundedAndOrdered() {
        let journal = EventJournal(nodeId: "n1", capacity: 250)
        for batch in 0..<1_000 {
            journal.append(Self.drafts((0..<7).map { "b\(batch)-\($0)" }), mapName: "todos", tenant: Self.tenant)
        }
        let (events, _) = journal.read(tenant: Self.tenant, fromSequence: 0, limit: 1_000, mapName: nil)
        #expect(events.count == 250)
        #expect(events.first?.sequence == String(7_000 - 249))
        #expect(events.last?.sequence == "7000")
        #expect(events.last?.key == "b999-6")
    }

    @Test func tenantsHaveTheirOwnLogsAndAPurgedTenantKeepsNone() {
        let journal = EventJournal(nodeId: "n1")
        journal.append(Self.drafts(["a"]), mapName: "todos", tenant: "tn_one")
        journal.append(Self.drafts(["b", "c"]), mapName: "todos", tenant: "tn_two")
        #expect(Self.keys(journal.read(tenant: "tn_one", fromSequence: 0, limit: 10, mapName: nil).events) == ["a"])
        #expect(journal.read(tenant: "tn_two", fromSequence: 0, limit: 10, mapName: nil).events.map(\.sequence) == ["1", "2"])
        journal.removeTenant("tn_one")
        journal.append(Self.drafts(["late"]), mapName: "todos", tenant: "tn_one")
        #expect(journal.read(tenant: "tn_one", fromSequence: 0, limit: 10, mapName: nil).events.isEmpty)
    }

    @Test func aSubscriberGetsTheReplayThenMatchingNewEvents() async {
        let journal = EventJournal(nodeId: "n1")
        journal.append(Self.drafts(["a"]), mapName: "todos", tenant: Self.tenant)
        journal.append(Self.drafts(["skipped"]), mapName: "notes", tenant: Self.tenant)
        let (outbound, stream) = SessionOutbound.make()
        journal.subscribe(tenant: Self.tenant, subscriptionId: "s1", fromSequence: 1, mapName: "todos", types: [.put], subscriber: outbound)
        journal.append(Self.drafts(["b"]), mapName: "todos", tenant: Self.tenant)
        journal.append(Self.drafts(["gone"], type: .delete), mapName: "todos", tenant: Self.tenant)
        journal.append(Self.drafts(["c"]), mapName: "todos", tenant: Self.tenant)
        let messages = await MapStoreTests.receive(stream, count: 3)
        let events = messages.compactMap { message -> JournalEvent? in
            if case .journalEventMessage(let m) = message { return m.event }
            return nil
        }
        #expect(Self.keys(events) == ["a", "b", "c"])
        #expect(events.map(\.sequence) == ["1", "3", "5"])
    }
}
