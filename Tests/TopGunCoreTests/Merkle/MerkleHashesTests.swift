import PropertyBased
import Testing
import TopGunCore

@Suite struct MerkleHashesTests {
    /// A map split over partitions has the tree of the whole map: its parts' leaves summed,
    /// the levels above recomputed, whatever the split and the history of writes and removals.
    @Test func summedPartsEqualTheTreeOfTheWholeMap() async {
        let keys = Gen<String?>.element(of: ["a", "b", "c", "d", "key1", "x", "y", "é", "😀", "k17", "k99", "user:42"])
        let ops = zip(keys, Gen.int(in: 0...5), Gen.bool(0.2)).array(of: 0...80)
        let partitions = Gen.int(in: 1...7)
        await propertyCheck(count: 300, input: zip(ops, partitions)) { ops, partitionCount in
            var whole = MerkleTree()
            var parts = [MerkleTree](repeating: MerkleTree(), count: partitionCount)
            var model: [String: UInt32] = [:]
            for (key, version, remove) in ops {
                let key = key ?? "a"
                // Any function of the key will do: each key lives in exactly one part.
                let part = Int(Hashing.fnv1a(key) % UInt32(partitionCount))
                if remove {
                    if let hash = model.removeValue(forKey: key) {
                        whole.remove(key: key, entryHash: hash)
                        parts[part].remove(key: key, entryHash: hash)
                    }
                } else {
                    let hash = MerkleEntryHash.lww(key: key, timestamp: Timestamp(millis: Int64(version), counter: 0, nodeId: "n"))
                    let previous = model.updateValue(hash, forKey: key)
                    whole.update(key: key, entryHash: hash, previous: previous)
                    parts[part].update(key: key, entryHash: hash, previous: previous)
                }
            }
            let summed = MerkleHashes.summing(parts.map(\.hashes))
            #expect(summed == whole.hashes)
            #expect(summed.rootHash == whole.rootHash)
            // What a client walks: every bucket on every level.
            for first in summed.buckets(atPath: "") {
                let level1 = String(first.digit)
                #expect(summed.buckets(atPath: level1).map(\.hash) == whole.buckets(atPath: level1).map(\.hash))
                for second in summed.buckets(atPath: level1) {
                    let level2 = level1 + String(second.digit)
                    #expect(summed.buckets(atPath: level2).map(\.digit) == whole.buckets(atPath: level2).map(\.digit))
                    for leaf in summed.buckets(atPath: level2) {
                        #expect(summed.isNonEmptyLeaf(level2 + String(leaf.digit)) == whole.isNonEmptyLeaf(level2 + String(leaf.digit)))
                    }
                }
            }
        }
    }

    /// The parts' own levels are not sums of anything: adding them up gives a wrong root, which
    /// is why `summing` recomputes them.
    @Test func partRootsDoNotAddUp() {
        var whole = MerkleTree()
        var parts = [MerkleTree(), MerkleTree()]
        for (index, key) in ["a", "b", "c", "d"].enumerated() {
            let hash = MerkleEntryHash.lww(key: key, timestamp: Timestamp(millis: 1, counter: 0, nodeId: "n"))
            whole.update(key: key, entryHash: hash, previous: nil)
            parts[index % 2].update(key: key, entryHash: hash, previous: nil)
        }
        #expect(parts[0].rootHash &+ parts[1].rootHash != whole.rootHash)
        #expect(MerkleHashes.summing(parts.map(\.hashes)).rootHash == whole.rootHash)
    }

    @Test func noPartsIsTheEmptyTree() {
        #expect(MerkleHashes.summing([]) == MerkleTree().hashes)
        #expect(MerkleHashes.summing([]).rootHash == 0)
    }
}
