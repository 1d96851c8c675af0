import PropertyBased
import Testing
import TopGunCore

@Suite struct LWWMapTests {
    static func ts(_ millis: Int64, _ counter: Int64 = 0, _ node: String) -> Timestamp {
        Timestamp(millis: millis, counter: counter, nodeId: node)
    }

    // protocol.md §11.6
    @Test func newerWriteWinsAndOlderRedeliveryIsIgnored() {
        var map = LWWMap()
        let first = LWWRecord(value: "val1", timestamp: Self.ts(100, 0, "A"))
        let result1 = map.merge(key: "k", record: first)
        #expect(result1)
        #expect(map.value(forKey: "k", nowMillis: 0) == "val1")
        let result2 = map.merge(key: "k", record: LWWRecord(value: "val2", timestamp: Self.ts(200, 0, "B")))
        #expect(result2)
        let result3 = map.merge(key: "k", record: first)
        #expect(!result3)
        #expect(map.value(forKey: "k", nowMillis: 0) == "val2")
    }

    @Test func tieOnMillisAndCounterIsBrokenByNodeId() {
        let a = LWWRecord(value: "valA", timestamp: Self.ts(100, 0, "A"))
        let b = LWWRecord(value: "valB", timestamp: Self.ts(100, 0, "B"))
        var ab = LWWMap()
        ab.merge(key: "k", record: a)
        ab.merge(key: "k", record: b)
        var ba = LWWMap()
        ba.merge(key: "k", record: b)
        ba.merge(key: "k", record: a)
        #expect(ab.value(forKey: "k", nowMillis: 0) == "valB")
        #expect(ba.value(forKey: "k", nowMillis: 0) == "valB")
    }

    @Test func equalTimestampKeepsTheIncumbent() {
        var map = LWWMap()
        map.merge(key: "k", record: LWWRecord(value: "first", timestamp: Self.ts(1, 0, "A")))
        let result4 = map.merge(key: "k", record: LWWRecord(value: "second", timestamp: Self.ts(1, 0, "A")))
        #expect(!result4)
        #expect(map.value(forKey: "k", nowMillis: 0) == "first")
    }

    @Test func tombstoneHidesTheValueButStaysInTheMerkleTree() {
        var map = LWWMap()
        map.merge(key: "k", record: LWWRecord(value: "v", timestamp: Self.ts(1, 0, "A")))
        map.merge(key: "k", record: LWWRecord(value: nil, timestamp: Self.ts(2, 0, "A")))
        #expect(map.value(forKey: "k", nowMillis: 0) == nil)
        #expect(map.record(forKey: "k")?.isTombstone == true)
        #expect(map.entryHash(of: "k") == MerkleEntryHash.lww(key: "k", timestamp: Self.ts(2, 0, "A")))
    }

    @Test func expiryIsStrictlyAfterMillisPlusTTL() {
        var map = LWWMap()
        map.merge(key: "k", record: LWWRecord(value: "v", timestamp: Self.ts(1000, 0, "A"), ttlMs: 500))
        #expect(map.value(forKey: "k", nowMillis: 1500) == "v")
        #expect(map.value(forKey: "k", nowMillis: 1501) == nil)
        #expect(map.record(forKey: "k") != nil)  // expired records stay stored
    }

    @Test func theTreeTakesInWritesWhenReadAndMatchesATreeBuiltFromTheRecords() async {
        // The tree is brought up to date only when read: reads at random points between
        // writes (and prunes, which move entries) must give the tree of the records as they are.
        await propertyCheck(count: 300, input: CRDTGen.lwwOps, Gen.int(in: 0...1_000_000)) { ops, seed in
            var map = LWWMap()
            var generator = seed
            for op in ops {
                map.merge(key: op.key, record: op.record)
                generator = generator &* 1_103_515_245 &+ 12_345
                if generator % 3 == 0 { _ = map.merkleTree.rootHash }
                if generator % 11 == 0 { map.pruneTombstones(olderThan: Self.ts(5, 0, "n1")) }
            }
            var rebuilt = MerkleTree()
            for (key, record) in map.recordsByKey() {
                rebuilt.update(key: key, entryHash: MerkleEntryHash.lww(key: key, timestamp: record.timestamp), previous: nil)
            }
            let tree = map.merkleTree
            #expect(tree.rootHash == rebuilt.rootHash)
            #expect(tree.count == map.count)
            for (key, record) in map.recordsByKey() {
                #expect(map.entryHash(of: key) == MerkleEntryHash.lww(key: key, timestamp: record.timestamp))
            }
        }
    }

    @Test func keysEqualOnlyByteForByteAsInJavaScript() {
        // "é" precomposed and as e + combining accent: equal for Swift's `==`, two keys for
        // the client (and two Merkle entries with different hashes).
        var map = LWWMap()
        map.merge(key: "\u{e9}", record: LWWRecord(value: "one", timestamp: Self.ts(1, 0, "A")))
        map.merge(key: "e\u{301}", record: LWWRecord(value: "two", timestamp: Self.ts(1, 0, "A")))
        #expect(map.count == 2)
        #expect(map.record(forKey: "\u{e9}")?.value == "one")
        #expect(map.record(forKey: "e\u{301}")?.value == "two")
        #expect(map.merkleTree.count == 2)
        #expect(map.merkleTree.contains("\u{e9}") && map.merkleTree.contains("e\u{301}"))
    }

    @Test func pruneRemovesOnlyOldTombstones() {
        var map = LWWMap()
        map.merge(key: "gone", record: LWWRecord(value: nil, timestamp: Self.ts(1000, 0, "A")))
        map.merge(key: "live", record: LWWRecord(value: "v", timestamp: Self.ts(500, 0, "A")))
        let result5 = map.pruneTombstones(olderThan: Self.ts(0, 0, ""))
        #expect(result5 == [])
        let result6 = map.pruneTombstones(olderThan: Self.ts(2000, 0, ""))
        #expect(result6 == ["gone"])
        #expect(map.record(forKey: "gone") == nil)
        #expect(map.record(forKey: "live") != nil)
        #expect(map.entryHash(of: "gone") == nil)
        #expect(!map.merkleTree.contains("gone"))
        // The key can be written again after pruning.
        let result7 = map.merge(key: "gone", record: LWWRecord(value: "again", timestamp: Self.ts(10, 0, "A")))
        #expect(result7)
    }

    @Test func replicasReceivingTheSameOpsInAnyOrderConverge() async {
        await propertyCheck(count: 300, input: CRDTGen.lwwOps, Gen.int(in: 0...1_000_000)) { ops, seed in
            var inOrder = LWWMap()
            for op in ops { inOrder.merge(key: op.key, record: op.record) }
            var shuffled = LWWMap()
            for op in CRDTGen.shuffle(ops, seed: seed) { shuffled.merge(key: op.key, record: op.record) }
            // Delivered twice: idempotent.
            for op in ops { shuffled.merge(key: op.key, record: op.record) }
            #expect(inOrder.recordsByKey() == shuffled.recordsByKey())
            #expect(inOrder.merkleTree.rootHash == shuffled.merkleTree.rootHash)
        }
    }

    @Test func mapMergeIsCommutativeAssociativeAndIdempotent() async {
        await propertyCheck(count: 200, input: CRDTGen.lwwOps, CRDTGen.lwwOps, CRDTGen.lwwOps) { x, y, z in
            func build(_ ops: [(key: String, record: LWWRecord)]) -> LWWMap {
                var map = LWWMap()
                for op in ops { map.merge(key: op.key, record: op.record) }
                return map
            }
            let a = build(x), b = build(y), c = build(z)
            var ab = a; ab.merge(b)
            var ba = b; ba.merge(a)
            #expect(ab.recordsByKey() == ba.recordsByKey())
            #expect(ab.merkleTree.rootHash == ba.merkleTree.rootHash)
            var abc1 = ab; abc1.merge(c)
            var bc = b; bc.merge(c)
            var abc2 = a; abc2.merge(bc)
            #expect(abc1.recordsByKey() == abc2.recordsByKey())
            var aa = a; aa.merge(a)
            #expect(aa.recordsByKey() == a.recordsByKey())
        }
    }
}
