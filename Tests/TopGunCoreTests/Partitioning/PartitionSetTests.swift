import PropertyBased
import Testing
import TopGunCore

@Suite("PartitionSet")
struct PartitionSetTests {
    @Test func behavesLikeASetOfPartitionIDs() async {
        await propertyCheck(input: Gen.int(in: 0...270).array(of: 0...40), Gen.int(in: 0...270).array(of: 0...40)) { left, right in
            let a = PartitionSet(left)
            let b = PartitionSet(right)
            #expect(Array(a) == Set(left).sorted())
            #expect(a.count == Set(left).count)
            #expect(a.isEmpty == left.isEmpty)
            #expect(Array(a.union(b)) == Set(left).union(right).sorted())
            #expect(a.isDisjoint(with: b) == Set(left).isDisjoint(with: right))
            for id in [0, 63, 64, 127, 128, 255, 256, 270] { #expect(a.contains(id) == left.contains(id)) }
            var removed = a
            if let first = left.first {
                removed.remove(first)
                #expect(!removed.contains(first))
                #expect(removed.count == Set(left).count - 1)
            }
            #expect((a == b) == (Set(left) == Set(right)))
        }
    }

    @Test func everyPartitionAndNone() {
        #expect(PartitionSet.all.count == PartitionFunction.partitionCount)
        #expect(Array(PartitionSet.all) == Array(0..<PartitionFunction.partitionCount))
        #expect(!PartitionSet.all.contains(271) && !PartitionSet.all.contains(-1))
        #expect(PartitionSet().isEmpty && Array(PartitionSet()).isEmpty)
    }
}
