import PropertyBased
import Testing
import TopGunCore

@Suite struct ORMapTests {
    static func record(_ value: DataValue, _ millis: Int64, _ node: String, counter: Int64 = 0) -> ORMapRecord {
        let ts = Timestamp(millis: millis, counter: counter, nodeId: node)
        return ORMapRecord(value: value, timestamp: ts, tag: ts.description)
    }

    // protocol.md §11.6, ORMap.test.ts
    @Test func concurrentAddSurvivesAnObservedRemove() {
        var a = ORMap()
        let workA = Self.record("work", 1, "A")
        a.apply(key: "tags", record: workA)
        var b = ORMap()
        b.merge(a)
        a.applyTombstone(tag: workA.tag, key: "tags")
        b.apply(key: "tags", record: Self.record("work", 2, "B"))
        a.merge(b)
        #expect(a.values(forKey: "tags", nowMillis: 0) == ["work"])
        #expect(a.records(forKey: "tags").map(\.tag) == ["2:0:B"])
    }

    @Test func addingTheSameValueTwiceKeepsTwoTags() {
        var map = ORMap()
        map.apply(key: "tags", record: Self.record("work", 1, "A"))
        map.apply(key: "tags", record: Self.record("work", 1, "A", counter: 1))
        #expect(map.values(forKey: "tags", nowMillis: 0) == ["work", "work"])
    }

    @Test func addOfATombstonedTagIsRefused() {
        var map = ORMap()
        map.applyTombstone(tag: "5:0:A", key: "k")
        let result1 = map.apply(key: "k", record: Self.record("x", 5, "A"))
        #expect(!result1)
        #expect(map.values(forKey: "k", nowMillis: 0).isEmpty)
    }

    // ORMapMerkle.test.ts mergeKey outcomes
    @Test func mergeKeyOutcomes() {
        var map = ORMap()
        let local = Self.record("local", 100, "L")
        map.apply(key: "k", record: local)

        var unknown = map
        let r1 = unknown.mergeKey("k", records: [ORMapRecord(value: "remote", timestamp: local.timestamp, tag: "remote-tag-1")], tombstones: [])
        #expect(r1.added == 1 && r1.updated == 0)
        #expect(unknown.values(forKey: "k", nowMillis: 0).contains("remote"))

        var newer = map
        let r2 = newer.mergeKey("k", records: [ORMapRecord(value: "newer", timestamp: Timestamp(millis: 200, counter: 0, nodeId: "R"), tag: local.tag)], tombstones: [])
        #expect(r2.added == 0 && r2.updated == 1)
        #expect(newer.values(forKey: "k", nowMillis: 0) == ["newer"])

        var older = map
        let r3 = older.mergeKey("k", records: [ORMapRecord(value: "older", timestamp: Timestamp(millis: 1, counter: 0, nodeId: "R"), tag: local.tag)], tombstones: [])
        #expect(r3.added == 0 && r3.updated == 0)
        #expect(older.values(forKey: "k", nowMillis: 0) == ["local"])

        var removed = map
        removed.mergeKey("k", records: [], tombstones: [local.tag])
        #expect(removed.records(forKey: "k").isEmpty)
        #expect(removed.tombstones.contains(local.tag))
        #expect(removed.entryHash(of: "k") == nil)
        #expect(!removed.merkleTree.contains("k"))

        var both = map
        let r5 = both.mergeKey("k", records: [ORMapRecord(value: "x", timestamp: local.timestamp, tag: "dead")], tombstones: ["dead"])
        #expect(r5.added == 0)
        #expect(!both.values(forKey: "k", nowMillis: 0).contains("x"))
    }

    @Test func entryCarriesTheKeysOwnTombstones() {
        var map = ORMap()
        let r = Self.record("v", 1, "A")
        map.apply(key: "k", record: r)
        map.apply(key: "other", record: Self.record("w", 2, "A"))
        map.applyTombstone(tag: r.tag)
        map.apply(key: "k", record: Self.record("v2", 3, "A"))
        let entry = map.entry(forKey: "k")
        #expect(entry.tombstones == [r.tag])
        #expect(entry.records.map(\.value) == ["v2"])
        #expect(map.entry(forKey: "other").tombstones.isEmpty)
    }

    @Test func merkleEntryFollowsTheClientFormula() {
        var map = ORMap()
        let r = Self.record("red", 1000, "n1")
        map.apply(key: "tags", record: r)
        #expect(map.entryHash(of: "tags") == MerkleEntryHash.orMap(key: "tags", records: [r]))
    }

    @Test func pruneForgetsOldTombstonesOnly() {
        var map = ORMap()
        map.applyTombstone(tag: "100:0:A", key: "k")
        map.applyTombstone(tag: "900:0:A", key: "k")
        map.applyTombstone(tag: "not-a-timestamp", key: "k")
        let result2 = map.pruneTombstones(olderThan: Timestamp(millis: 500, counter: 0, nodeId: ""))
        #expect(result2 == 1)
        #expect(map.tombstones == ["900:0:A", "not-a-timestamp"])
    }

    @Test func replicasReceivingTheSameOpsInAnyOrderConverge() async {
        await propertyCheck(count: 300, input: CRDTGen.orOps, Gen.int(in: 0...1_000_000)) { ops, seed in
            var inOrder = ORMap()
            for op in ops { inOrder.apply(op) }
            var shuffled = ORMap()
            for op in CRDTGen.shuffle(ops, seed: seed) { shuffled.apply(op) }
            for op in ops { shuffled.apply(op) }  // re-delivery is harmless
            #expect(inOrder.observable == shuffled.observable)
            #expect(inOrder.tombstones == shuffled.tombstones)
            #expect(inOrder.merkleTree.rootHash == shuffled.merkleTree.rootHash)
        }
    }

    @Test func mapMergeIsCommutativeAssociativeAndIdempotent() async {
        await propertyCheck(count: 200, input: CRDTGen.orOps, Gen.int(in: 0...2), Gen.int(in: 0...1_000_000)) { ops, _, seed in
            // Three replicas each see a different subset of the same history.
            let shuffled = CRDTGen.shuffle(ops, seed: seed)
            let third = max(1, shuffled.count / 3)
            func build(_ slice: ArraySlice<CRDTGen.ORMapOp>) -> ORMap {
                var map = ORMap()
                for op in slice { map.apply(op) }
                return map
            }
            let a = build(shuffled.prefix(third)), b = build(shuffled.dropFirst(third).prefix(third)), c = build(shuffled.dropFirst(2 * third))
            var ab = a; ab.merge(b)
            var ba = b; ba.merge(a)
            #expect(ab.observable == ba.observable)
            #expect(ab.tombstones == ba.tombstones)
            #expect(ab.merkleTree.rootHash == ba.merkleTree.rootHash)
            var abc1 = ab; abc1.merge(c)
            var bc = b; bc.merge(c)
            var abc2 = a; abc2.merge(bc)
            #expect(abc1.observable == abc2.observable)
            #expect(abc1.merkleTree.rootHash == abc2.merkleTree.rootHash)
            var aa = a; aa.merge(a)
            #expect(aa.observable == a.observable)
        }
    }

    @Test func syncViaMergeKeyConvergesLikeFullMerge() async {
        await propertyCheck(count: 200, input: CRDTGen.orOps, Gen.int(in: 0...1_000_000)) { ops, seed in
            let shuffled = CRDTGen.shuffle(ops, seed: seed)
            let half = shuffled.count / 2
            var a = ORMap(), b = ORMap()
            for op in shuffled.prefix(half) { a.apply(op) }
            for op in shuffled.dropFirst(half) { b.apply(op) }
            // Exchange entries key by key, as OR-Map Merkle sync does, in both directions.
            var aSynced = a, bSynced = b
            for key in Set(a.keysWithState).union(b.keysWithState) {
                let fromB = b.entry(forKey: key), fromA = a.entry(forKey: key)
                aSynced.mergeKey(key, records: fromB.records, tombstones: fromB.tombstones)
                bSynced.mergeKey(key, records: fromA.records, tombstones: fromA.tombstones)
            }
            #expect(aSynced.observable == bSynced.observable)
            #expect(aSynced.merkleTree.rootHash == bSynced.merkleTree.rootHash)
        }
    }

    /// The client's keys and tags are JavaScript strings, equal only code unit for code unit:
    /// a composed and a decomposed "é" are two keys, and two tags.
    @Test func canonicallyEquivalentKeysAndTagsStayApart() {
        var map = ORMap()
        let composed = ORMapRecord(value: "composed", timestamp: Self.record("x", 1, "A").timestamp, tag: "1:0:\u{e9}")
        let decomposed = ORMapRecord(value: "decomposed", timestamp: Self.record("x", 1, "A").timestamp, tag: "1:0:e\u{301}")
        let addedComposed = map.apply(key: "\u{e9}", record: composed)
        let addedDecomposed = map.apply(key: "e\u{301}", record: decomposed)
        #expect(addedComposed && addedDecomposed)
        #expect(map.keyCount == 2)
        #expect(map.values(forKey: "\u{e9}", nowMillis: 0) == ["composed"])
        #expect(map.values(forKey: "e\u{301}", nowMillis: 0) == ["decomposed"])
        // Removing one tag leaves the other, whose string Swift calls equal.
        map.applyTombstone(tag: "1:0:e\u{301}")
        #expect(map.isTombstoned("1:0:e\u{301}"))
        #expect(!map.isTombstoned("1:0:\u{e9}"))
        #expect(map.values(forKey: "\u{e9}", nowMillis: 0) == ["composed"])
        #expect(map.values(forKey: "e\u{301}", nowMillis: 0).isEmpty)
        #expect(map.keysWithState.count == 2)
        #expect(map.tombstones(forKey: "e\u{301}") == ["1:0:e\u{301}"])
        #expect(map.tombstones(forKey: "\u{e9}").isEmpty)
        #expect(map.merkleTree.count == 1)
    }
}
