import Testing
import TopGunCore

private func records(_ pairs: [(String, DataValue)]) -> [QueryRecord] {
    pairs.map { QueryRecord(key: $0.0, value: $0.1) }
}

@Suite struct GroupAggregatorTests {
    private let sales = records([
        ("s1", ["region": "north", "kind": "tv", "amount": 100, "qty": 1]),
        ("s2", ["region": "north", "kind": "tv", "amount": 50.5, "qty": 3]),
        ("s3", ["region": "south", "kind": "radio", "amount": 20, "qty": .null]),
        ("s4", ["region": "north", "kind": "radio", "amount": "n/a"]),
    ])

    @Test func computesEveryAggregationFunction() {
        let rows = GroupAggregator.aggregate(
            sales, groupBy: ["region"],
            aggregations: [
                Aggregation(.sum, field: "amount"), Aggregation(.min, field: "amount"), Aggregation(.max, field: "amount"),
                Aggregation(.avg, field: "amount"), Aggregation(.count, field: "qty"),
            ])
        #expect(rows.map(\.key) == ["north", "south"])
        #expect(rows[0].value == [
            "__key": "north", "__count": 3, "__sum_amount": 150.5, "__min_amount": 50.5, "__max_amount": 100,
            "__avg_amount": 75.25, "__count_qty": 2, "region": "north",
        ])
        #expect(rows[1].value == [
            "__key": "south", "__count": 1, "__sum_amount": 20, "__min_amount": 20, "__max_amount": 20,
            "__avg_amount": 20.0, "__count_qty": 0, "region": "south",
        ])
    }

    @Test func integerSumsStayIntegers() {
        let rows = GroupAggregator.aggregate(sales, groupBy: ["kind"], aggregations: [Aggregation(.sum, field: "qty")])
        let radio = rows.first { $0.key == "radio" }?.value.objectValue
        let tv = rows.first { $0.key == "tv" }?.value.objectValue
        #expect(tv?["__sum_qty"].map { if case .int(4) = $0 { true } else { false } } == true)
        #expect(radio?["__sum_qty"] == 0)
    }

    @Test func aggregatesWithoutNumbersAreNullOrZero() {
        let rows = GroupAggregator.aggregate(
            records([("x", ["g": 1, "v": "text"])]), groupBy: ["g"],
            aggregations: [Aggregation(.sum, field: "v"), Aggregation(.min, field: "v"), Aggregation(.avg, field: "v")])
        #expect(rows == [QueryRecord(key: "1", value: ["__key": "1", "__count": 1, "__sum_v": 0, "__min_v": .null, "__avg_v": .null, "g": 1])])
    }

    @Test func severalGroupFieldsJoinWithEscapedBars() {
        let rows = GroupAggregator.aggregate(
            records([("1", ["a": "x|y", "b": 2]), ("2", ["a": "x", "b": "y|2"]), ("3", ["a": "x|y", "b": 2.0])]),
            groupBy: ["a", "b"], aggregations: [])
        #expect(rows.map(\.key).sorted() == ["x\\|y|2", "x|y\\|2"])
        #expect(rows.first { $0.key == "x\\|y|2" }?.value.objectValue?["__count"] == 2)
    }

    @Test func missingAndNullGroupValuesShareTheNullGroup() {
        let rows = GroupAggregator.aggregate(records([("1", ["c": .null]), ("2", [:]), ("3", ["c": "z"])]), groupBy: ["c"], aggregations: [])
        #expect(rows == [
            QueryRecord(key: "null", value: ["__key": "null", "__count": 2, "c": .null]),
            QueryRecord(key: "z", value: ["__key": "z", "__count": 1, "c": "z"]),
        ])
    }

    @Test func groupKeyTextOfNonStrings() {
        #expect(GroupAggregator.groupKey(for: [.int(5)]) == "5")
        #expect(GroupAggregator.groupKey(for: [.double(5.0)]) == "5")
        #expect(GroupAggregator.groupKey(for: [.double(1.5)]) == "1.5")
        #expect(GroupAggregator.groupKey(for: [true]) == "true")
        #expect(GroupAggregator.groupKey(for: [nil]) == "null")
        #expect(GroupAggregator.groupKey(for: [["b": 1, "a": "x"]]) == "{\"a\":\"x\",\"b\":1}")
        #expect(GroupAggregator.groupKey(for: ["a", 1]) == "a|1")
    }

    @Test func aggregationsWithoutGroupByFormOneGroup() {
        let rows = GroupAggregator.aggregate(sales, groupBy: [], aggregations: [Aggregation(.max, field: "qty")])
        #expect(rows == [QueryRecord(key: "", value: ["__key": "", "__count": 4, "__max_qty": 3])])
        #expect(GroupAggregator.aggregate([], groupBy: [], aggregations: [Aggregation(.count)]).isEmpty)
    }

    /// Group keys compare as the client's JavaScript strings do: code unit for code unit.
    @Test func canonicallyEquivalentGroupValuesAreTwoGroups() {
        let rows = GroupAggregator.aggregate(
            records([("a", ["city": "caf\u{e9}"]), ("b", ["city": "cafe\u{301}"]), ("c", ["city": "caf\u{e9}"])]),
            groupBy: ["city"], aggregations: [])
        // In JavaScript order: "e" (U+0065) sorts before "\u{e9}".
        #expect(rows.map { Array($0.key.utf8) } == [Array("cafe\u{301}".utf8), Array("caf\u{e9}".utf8)])
        #expect(rows.map { $0.value.objectValue?["__count"] } == [1, 2])
    }
}
