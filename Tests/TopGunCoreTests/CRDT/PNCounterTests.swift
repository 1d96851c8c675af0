import PropertyBased
import Testing
import TopGunCore

@Suite struct PNCounterTests {
    @Test func valueIsPositiveMinusNegative() {
        var counter = PNCounter()
        counter.add(5, nodeId: "a")
        counter.add(-2, nodeId: "b")
        counter.add(3, nodeId: "b")
        #expect(counter.value == 6)
        #expect(counter.positive == ["a": 5, "b": 3])
        #expect(counter.negative == ["b": 2])
    }

    @Test func mergeTakesTheMaximumPerNode() {
        var a = PNCounter(positive: ["n1": 3, "n2": 1], negative: ["n1": 1])
        let b = PNCounter(positive: ["n1": 2, "n2": 4], negative: ["n3": 2])
        let result1 = a.merge(b)
        #expect(result1)
        #expect(a.positive == ["n1": 3, "n2": 4])
        #expect(a.negative == ["n1": 1, "n3": 2])
        let again = a.merge(b)
        #expect(!again)  // nothing new the second time
    }

    @Test func replicasConvergeWhateverTheMergeOrder() async {
        await propertyCheck(count: 300, input: CRDTGen.counterOps, CRDTGen.counterOps, CRDTGen.counterOps) { x, y, z in
            // Each replica is owned by one node id, as in the client.
            func build(_ ops: [(String, Double)], node: String) -> PNCounter {
                var c = PNCounter()
                for op in ops { c.add(op.1, nodeId: node) }
                return c
            }
            let a = build(x, node: "n1"), b = build(y, node: "n2"), c = build(z, node: "n3")
            var ab = a; ab.merge(b)
            var ba = b; ba.merge(a)
            #expect(ab == ba)
            var abc = ab; abc.merge(c)
            var bc = b; bc.merge(c)
            var aBC = a; aBC.merge(bc)
            #expect(abc == aBC)
            var again = abc; again.merge(abc)
            #expect(again == abc)
            let expected = (x.map(\.1) + y.map(\.1) + z.map(\.1)).reduce(0, +)
            #expect(abc.value == expected)
        }
    }
}
