import Testing
import TopGunCore

private func sortedKeys(_ records: [(key: String, value: DataValue)], by sort: SortOrder) -> [String] {
    records.sorted(by: sort.areInIncreasingOrder).map(\.key)
}

@Suite struct SortOrderTests {
    private let people: [(key: String, value: DataValue)] = [
        ("p1", ["name": "Cleo", "age": 30]),
        ("p2", ["name": "Abe", "age": 25.5]),
        ("p3", ["name": "Bea", "age": 30]),
        ("p4", ["name": "Dan"]),
        ("p5", ["name": "Eve", "age": .null]),
        ("p0", ["name": "Abe", "age": 40]),
    ]

    @Test func ascendingPutsMissingAndNullLast() {
        #expect(sortedKeys(people, by: SortOrder([SortField("age", .asc)])) == ["p2", "p1", "p3", "p0", "p4", "p5"])
    }

    @Test func descendingPutsMissingAndNullFirst() {
        #expect(sortedKeys(people, by: SortOrder([SortField("age", .desc)])) == ["p4", "p5", "p0", "p1", "p3", "p2"])
    }

    @Test func tiesAreBrokenByKeyAscendingInBothDirections() {
        // p1 and p3 tie on age 30; p4 and p5 tie on missing age.
        let desc = sortedKeys(people, by: SortOrder([SortField("age", .desc)]))
        #expect(desc.firstIndex(of: "p1")! < desc.firstIndex(of: "p3")!)
        #expect(desc.firstIndex(of: "p4")! < desc.firstIndex(of: "p5")!)
    }

    @Test func laterFieldsBreakTiesOfEarlierOnes() {
        let sort = SortOrder([SortField("name", .asc), SortField("age", .desc)])
        #expect(sortedKeys(people, by: sort) == ["p0", "p2", "p3", "p1", "p4", "p5"])
    }

    @Test func noSortFieldsOrdersByKey() {
        #expect(sortedKeys(people, by: SortOrder([])) == ["p0", "p1", "p2", "p3", "p4", "p5"])
    }

    @Test func differentKindsSortBoolNumberStringThenComposites() {
        let mixed: [(key: String, value: DataValue)] = [
            ("obj", ["v": ["a": 1]]), ("arr", ["v": [1]]), ("str", ["v": "x"]),
            ("num", ["v": 2]), ("bool", ["v": true]), ("bin", ["v": .binary([1])]), ("none", [:]),
        ]
        #expect(sortedKeys(mixed, by: SortOrder([SortField("v")])) == ["bool", "num", "str", "bin", "arr", "obj", "none"])
    }

    @Test func stringsSortByBytesNotLocale() {
        let words: [(key: String, value: DataValue)] = [("1", ["w": "b"]), ("2", ["w": "B"]), ("3", ["w": "é"]), ("4", ["w": "a"])]
        #expect(sortedKeys(words, by: SortOrder([SortField("w")])) == ["2", "4", "1", "3"])
    }

    @Test func numbersSortNumericallyAcrossKinds() {
        let numbers: [(key: String, value: DataValue)] = [
            ("a", ["n": 10]), ("b", ["n": 9.5]), ("c", ["n": .uint(UInt64.max)]), ("d", ["n": -1]), ("e", ["n": 1e300]),
        ]
        #expect(sortedKeys(numbers, by: SortOrder([SortField("n")])) == ["d", "b", "a", "c", "e"])
    }

    @Test func sortByRecordKeyAttributeAndDottedPath() {
        let records: [(key: String, value: DataValue)] = [("b", ["p": ["x": 1]]), ("a", ["p": ["x": 2]]), ("c", ["p": ["x": 0]])]
        #expect(sortedKeys(records, by: SortOrder([SortField("_key", .desc)])) == ["c", "b", "a"])
        #expect(sortedKeys(records, by: SortOrder([SortField("p.x")])) == ["c", "b", "a"])
    }
}
