import Testing
import TopGunCore

@Suite struct PartitionPruningTests {
    @Test func whereKeyAttributesGiveExactKeys() {
        #expect(Query(where: ["_key": "a"]).exactKeys == ["a"])
        #expect(Query(where: ["id": 42]).exactKeys == ["42"])
        #expect(Query(where: ["key": ["a", "b", "a"]]).exactKeys == ["a", "b"])
        #expect(Query(where: ["_id": ["$eq": "x"]]).exactKeys == ["x"])
        #expect(Query(where: ["_key": ["$in": ["x", 7.0]]]).exactKeys == ["x", "7"])
        #expect(Query(where: ["_key": "a", "id": "b", "other": 1]).exactKeys == ["a", "b"])
    }

    @Test func whereWithoutUsableKeyGivesNil() {
        #expect(Query().exactKeys == nil)
        #expect(Query(where: ["name": "a"]).exactKeys == nil)
        #expect(Query(where: ["_key": ["$gt": "a"]]).exactKeys == nil)
        #expect(Query(where: ["_key": true]).exactKeys == nil)
        #expect(Query(where: ["_key": ["a", ["nested": 1]]]).exactKeys == nil)
    }

    @Test func predicateEqAndAndUnionGiveKeys() {
        #expect(Query(predicate: .leaf(.eq, "_key", "a")).exactKeys == ["a"])
        #expect(Query(predicate: .leaf(.in, "id", ["a", "b"])).exactKeys == ["a", "b"])
        let both = PredicateNode.and([.leaf(.eq, "_key", "a"), .leaf(.gt, "n", 1), .leaf(.eq, "id", "b")])
        #expect(Query(predicate: both).exactKeys == ["a", "b"])
    }

    @Test func orNotAndOtherOperatorsDisablePruning() {
        #expect(Query(predicate: .or([.leaf(.eq, "_key", "a"), .leaf(.eq, "_key", "b")])).exactKeys == nil)
        #expect(Query(predicate: .not(.leaf(.eq, "_key", "a"))).exactKeys == nil)
        #expect(Query(predicate: .leaf(.neq, "_key", "a")).exactKeys == nil)
        #expect(Query(predicate: .leaf(.eq, "name", "a")).exactKeys == nil)
        #expect(Query(predicate: .and([.leaf(.gt, "n", 1)])).exactKeys == nil)
        #expect(Query(predicate: .and([.or([.leaf(.eq, "_key", "a")])])).exactKeys == nil)
    }

    @Test func predicateWinsOverWhereForPruning() {
        #expect(Query(where: ["_key": "w"], predicate: .leaf(.eq, "name", "x")).exactKeys == nil)
    }
}
