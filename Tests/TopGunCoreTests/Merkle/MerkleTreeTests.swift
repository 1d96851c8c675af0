import PropertyBased
import Testing
import TopGunCore

@Suite struct MerkleTreeTests {
    static func lww(_ key: String, _ millis: Int64, _ counter: Int64, _ node: String) -> UInt32 {
        MerkleEntryHash.lww(key: key, timestamp: Timestamp(millis: millis, counter: counter, nodeId: node))
    }

    // protocol.md §11.3
    @Test func singleRecordRootMatchesTheClient() {
        var tree = MerkleTree()
        #expect(Self.lww("key1", 100, 0, "test") == 3_988_528_110)
        tree.update(key: "key1", entryHash: Self.lww("key1", 100, 0, "test"), previous: nil)
        #expect(tree.rootHash == 2_138_087_518)
    }

    @Test func threeRecordRootAndBucketsMatchTheClient() {
        var tree = MerkleTree()
        tree.update(key: "a", entryHash: Self.lww("a", 1000, 0, "n1"), previous: nil)
        tree.update(key: "b", entryHash: Self.lww("b", 1001, 2, "n2"), previous: nil)
        tree.update(key: "c", entryHash: Self.lww("c", 1002, 0, "n1"), previous: nil)
        #expect(Self.lww("a", 1000, 0, "n1") == 999_244_580)
        #expect(Self.lww("b", 1001, 2, "n2") == 1_715_329_035)
        #expect(Self.lww("c", 1002, 0, "n1") == 3_048_432_372)
        #expect(tree.rootHash == 4_239_531_738)
        let root = tree.buckets(atPath: "")
        #expect(root.map(\.digit) == ["e"])
        #expect(root.first?.hash == 3_918_579_023)
        #expect(tree.hash(atPath: "e") == 3_918_579_023)
        #expect(Set(tree.buckets(atPath: "e").map(\.digit)) == ["4", "7", "6"])
        #expect(tree.keys(inLeaf: "e40") == ["a"])
        #expect(tree.isNonEmptyLeaf("e40"))
        #expect(!tree.isNonEmptyLeaf("e4"))
        #expect(tree.buckets(atPath: "e40").isEmpty)  // a leaf has no buckets
    }

    @Test func emptyTreeRootIsZeroAndUnknownPathsAreEmpty() {
        let tree = MerkleTree()
        #expect(tree.rootHash == 0)
        #expect(tree.buckets(atPath: "").isEmpty)
        #expect(tree.buckets(atPath: "zz").isEmpty)
        #expect(tree.buckets(atPath: "0/1/2").isEmpty)
        #expect(tree.keys(inLeaf: "abcd").isEmpty)
    }

    @Test func removingTheLastKeyReturnsTheRootToZeroButKeepsTheNodes() {
        var tree = MerkleTree()
        tree.update(key: "key1", entryHash: 42, previous: nil)
        tree.update(key: "key1", entryHash: 43, previous: 42)
        #expect(tree.contains("key1"))
        tree.remove(key: "key1", entryHash: 43)
        #expect(!tree.contains("key1"))
        #expect(tree.rootHash == 0)
        #expect(tree.count == 0)
        #expect(tree.buckets(atPath: "") .map(\.digit) == ["3"])
        #expect(tree.buckets(atPath: "").first?.hash == 0)
    }

    @Test func incrementalRootEqualsRootRebuiltFromScratch() async {
        let ops = zip(Gen<String?>.element(of: ["a", "b", "c", "d", "key1", "x", "y", "é", "😀"]), Gen.int(in: 0...5), Gen.bool(0.2))
            .array(of: 0...60)
        await propertyCheck(count: 300, input: ops) { ops in
            var tree = MerkleTree()
            var model: [String: UInt32] = [:]
            for (key, version, remove) in ops {
                let key = key ?? "a"
                if remove {
                    if let hash = model.removeValue(forKey: key) { tree.remove(key: key, entryHash: hash) }
                } else {
                    let hash = Self.lww(key, Int64(version), 0, "n")
                    tree.update(key: key, entryHash: hash, previous: model.updateValue(hash, forKey: key))
                }
            }
            var rebuilt = MerkleTree()
            for (key, hash) in model { rebuilt.update(key: key, entryHash: hash, previous: nil) }
            #expect(Set(model.keys).allSatisfy(tree.contains))
            #expect(tree.rootHash == rebuilt.rootHash)
            #expect(tree.count == model.count)
            // The root is the combine of its buckets, each bucket the combine of its children.
            #expect(tree.rootHash == Hashing.combine(tree.buckets(atPath: "").map(\.hash)))
            for (digit, hash) in tree.buckets(atPath: "") {
                #expect(hash == Hashing.combine(tree.buckets(atPath: String(digit)).map(\.hash)))
            }
        }
    }
}
