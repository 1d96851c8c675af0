@testable import DataPlane
import Testing
import TopGunCore
import TopGunWire

@Suite struct OwnWritesTests {
    static func put(_ map: String, _ key: String, millis: Int64) -> ClientOp {
        ClientOp(mapName: map, key: key, opType: "PUT", record: LWWRecord(value: .string("v"), timestamp: Timestamp(millis: millis, counter: 0, nodeId: "c1")))
    }

    static func event(of op: ClientOp) -> OwnWrites.Fingerprint {
        OwnWrites.Fingerprint(ServerEventPayload(mapName: op.mapName, eventType: .put, key: op.key, record: op.record))!
    }

    @Test func aSessionsOwnWriteIsRecognisedOnceAndOnlyForItsWriter() {
        let writes = OwnWrites()
        let (writer, other) = (SessionID.next(), SessionID.next())
        writes.watch(writer, map: "todos")
        writes.watch(other, map: "todos")
        let op = Self.put("todos", "k", millis: 10)
        #expect(!writes.hasNotes)
        writes.note([op], by: writer)
        #expect(writes.hasNotes)
        #expect(!writes.isOwn(Self.event(of: op), by: other))
        #expect(!writes.isOwn(Self.event(of: Self.put("todos", "k", millis: 11)), by: writer), "another write of the same key")
        #expect(writes.isOwn(Self.event(of: op), by: writer))
        #expect(!writes.isOwn(Self.event(of: op), by: writer), "a write's event comes once")
        #expect(!writes.hasNotes)
    }

    @Test func onlyWritesToWatchedMapsAreNoted() {
        let writes = OwnWrites()
        let writer = SessionID.next()
        writes.note([Self.put("todos", "k", millis: 1)], by: writer)
        #expect(!writes.hasNotes, "a session without live queries is never sent events")
        writes.watch(writer, map: "todos")
        writes.note([Self.put("other", "k", millis: 2)], by: writer)
        #expect(!writes.hasNotes)
        writes.watch(writer, map: "todos")
        writes.unwatch(writer, map: "todos")
        writes.note([Self.put("todos", "k", millis: 3)], by: writer)
        #expect(writes.hasNotes, "one of its two live queries on the map is left")
        writes.unwatch(writer, map: "todos")
        #expect(!writes.hasNotes, "its notes go with its last live query")
    }

    @Test func orMapAddsAndRemovesAreRecognisedByTag() {
        let writes = OwnWrites()
        let writer = SessionID.next()
        writes.watch(writer, map: "tags")
        let record = ORMapRecord(value: .string("a"), timestamp: Timestamp(millis: 5, counter: 1, nodeId: "c"), tag: "5:1:c")
        writes.note([ORMapEntry(key: "k", records: [record], tombstones: ["4:0:c"])], map: "tags", by: writer)
        #expect(writes.isOwn(OwnWrites.Fingerprint(ServerEventPayload(mapName: "tags", eventType: .orAdd, key: "k", orRecord: record))!, by: writer))
        #expect(writes.isOwn(OwnWrites.Fingerprint(ServerEventPayload(mapName: "tags", eventType: .orRemove, key: "k", orTag: "4:0:c"))!, by: writer))
        #expect(!writes.hasNotes)
    }

    @Test func notesWhoseEventNeverComesArePushedOutAndCountedRightAfterASessionEnds() {
        let writes = OwnWrites(capacity: 8)
        let writer = SessionID.next()
        writes.watch(writer, map: "m")
        let ops = (0..<20).map { Self.put("m", "k\($0)", millis: Int64($0)) }
        writes.note(ops, by: writer)
        #expect(!writes.isOwn(Self.event(of: ops[0]), by: writer), "pushed out by newer notes")
        #expect(writes.isOwn(Self.event(of: ops[19]), by: writer))
        writes.sessionEnded(writer)
        #expect(!writes.hasNotes)
    }
}
