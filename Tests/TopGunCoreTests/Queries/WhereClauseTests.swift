import Testing
import TopGunCore

private let todo: DataValue = ["title": "write tests", "done": false, "priority": 3, "meta": ["owner": "ann"], "note": .null]

private func whereMatches(_ clause: DataObject, _ value: DataValue = todo, key: String = "t1") -> Bool {
    Query(where: clause).matches(key: key, value: value)
}

@Suite struct WhereClauseTests {
    @Test func plainValuesAreEqualityTests() {
        #expect(whereMatches(["done": false]))
        #expect(whereMatches(["done": false, "priority": 3.0]))
        #expect(!whereMatches(["done": true]))
        #expect(!whereMatches(["done": false, "priority": 4]))
    }

    @Test func missingFieldNeverMatches() {
        #expect(!whereMatches(["absent": .null]))
        #expect(!whereMatches(["absent": ["$ne": 1]]))
        #expect(!whereMatches(["absent": ["$in": [.null]]]))
    }

    @Test func presentNullEqualsNull() {
        #expect(whereMatches(["note": .null]))
        #expect(!whereMatches(["title": .null]))
    }

    @Test func comparisonOperatorsCompareNumbers() {
        #expect(whereMatches(["priority": ["$gt": 2]]))
        #expect(!whereMatches(["priority": ["$gt": 3]]))
        #expect(whereMatches(["priority": ["$gte": 3.0]]))
        #expect(!whereMatches(["priority": ["$gte": 3.5]]))
        #expect(whereMatches(["priority": ["$lt": 3.5]]))
        #expect(!whereMatches(["priority": ["$lt": 3]]))
        #expect(whereMatches(["priority": ["$lte": 3]]))
        #expect(!whereMatches(["priority": ["$lte": 2]]))
        #expect(!whereMatches(["title": ["$gt": 2]]))
    }

    @Test func eqAndNeOperatorsTestEquality() {
        #expect(whereMatches(["title": ["$eq": "write tests"]]))
        #expect(!whereMatches(["title": ["$eq": "other"]]))
        #expect(whereMatches(["title": ["$ne": "other"]]))
        #expect(!whereMatches(["title": ["$ne": "write tests"]]))
    }

    @Test func inOperatorMatchesListMembers() {
        #expect(whereMatches(["priority": ["$in": [1, 3]]]))
        #expect(!whereMatches(["priority": ["$in": [1, 2]]]))
        #expect(whereMatches(["tags": ["$in": ["x", "b"]]], ["tags": ["a", "b"]]))
        #expect(!whereMatches(["tags": ["$in": ["x", "y"]]], ["tags": ["a", "b"]]))
    }

    @Test func severalOperatorsInOneObjectAreAnded() {
        #expect(whereMatches(["priority": ["$gt": 1, "$lt": 5]]))
        #expect(!whereMatches(["priority": ["$gt": 1, "$lt": 3]]))
    }

    @Test func objectsWithoutDollarKeysAreEqualityTests() {
        #expect(whereMatches(["meta": ["owner": "ann"]]))
        #expect(!whereMatches(["meta": ["owner": "bob"]]))
    }

    @Test func dottedPathsAndRecordKeyWork() {
        #expect(whereMatches(["meta.owner": "ann"]))
        #expect(!whereMatches(["meta.owner": "bob"]))
        #expect(whereMatches(["_key": "t1"]))
        #expect(!whereMatches(["_key": "t2"]))
    }

    @Test func predicateTakesPrecedenceOverWhere() {
        let query = Query(where: ["done": true], predicate: .leaf(.eq, "done", false))
        #expect(query.matches(key: "t1", value: todo))
        #expect(!query.matches(key: "t1", value: ["done": true]))
    }

    @Test func emptyQueryMatchesEveryLiveValueButNotTombstones() {
        #expect(Query().matches(key: "k", value: todo))
        #expect(Query().matches(key: "k", value: 5))
        #expect(!Query().matches(key: "k", value: .null))
        #expect(!Query(where: [:]).matches(key: "k", value: .null))
    }

    @Test func matchesWithoutKeyResolvesKeyOnlyFromValue() {
        let query = Query(where: ["_key": "t1"])
        #expect(!query.matches(todo))
        #expect(query.matches(["_key": "t1"]))
    }
}
