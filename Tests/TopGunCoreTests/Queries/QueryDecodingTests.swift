import Testing
import TopGunCore

@Suite struct QueryDecodingTests {
    @Test func decodesTheFixtureQuerySub() throws {
        // QUERY_SUB.json's query.
        let wire: DataValue = ["where": ["age": ["$gt": 18]], "sort": [["field": "createdAt", "direction": "desc"]], "limit": 50]
        let query = try Query(from: wire)
        #expect(query.where == ["age": ["$gt": 18]])
        #expect(query.sort == SortOrder([SortField("createdAt", .desc)], wireForm: .array))
        #expect(query.limit == 50)
        #expect(query.dataValue == wire)
    }

    @Test func sortArrayFormRoundTripsAsArray() throws {
        let wire: DataValue = ["sort": [["field": "a", "direction": "asc"], ["field": "b", "direction": "desc"]]]
        let query = try Query(from: wire)
        #expect(query.sort?.wireForm == .array)
        #expect(query.sort?.fields == [SortField("a", .asc), SortField("b", .desc)])
        #expect(query.dataValue == wire)
        #expect(query.dataValue.objectValue?["sort"]?.arrayValue != nil)
    }

    @Test func sortObjectFormRoundTripsAsObjectInKeyOrder() throws {
        let wire: DataValue = ["sort": ["title": "asc", "createdAt": "desc"]]
        let query = try Query(from: wire)
        #expect(query.sort?.wireForm == .object)
        #expect(query.sort?.fields == [SortField("title", .asc), SortField("createdAt", .desc)])
        let encoded = query.dataValue.objectValue?["sort"]?.objectValue
        #expect(encoded?.keys == ["title", "createdAt"])
        #expect(query.dataValue == wire)
    }

    @Test func sortArrayDirectionDefaultsToAscending() throws {
        let query = try Query(from: ["sort": [["field": "a"]]])
        #expect(query.sort?.fields == [SortField("a", .asc)])
    }

    @Test func fullQueryRoundTrips() throws {
        let wire: DataValue = [
            "where": ["done": false],
            "predicate": ["op": "and", "children": [["op": "gt", "attribute": "n", "value": 1]]],
            "sort": ["n": "desc"],
            "limit": 5,
            "cursor": "abc",
            "groupBy": ["category"],
            "aggregations": [["func": "count"], ["func": "sum", "field": "price"]],
        ]
        let query = try Query(from: wire)
        #expect(query.cursor == "abc")
        #expect(query.groupBy == ["category"])
        #expect(query.aggregations == [Aggregation(.count), Aggregation(.sum, field: "price")])
        #expect(query.dataValue == wire)
        #expect(try Query(from: query.dataValue) == query)
    }

    @Test func unrelatedKeysAndNullsAreIgnored() throws {
        let query = try Query(from: ["fields": ["a"], "where": .null, "limit": .null, "somethingElse": 1])
        #expect(query == Query())
        #expect(query.dataValue == [:])
    }

    @Test(arguments: [DataValue.int(7), .uint(7), .double(7.0)])
    func limitAcceptsAnyWholeNumericCase(_ limit: DataValue) throws {
        #expect(try Query(from: ["limit": limit]).limit == 7)
    }

    @Test func limitRejectsNegativeFractionalAndNonNumbers() {
        #expect(throws: QueryError.invalidValue(field: "limit", reason: "must not be negative")) {
            try Query(from: ["limit": -1])
        }
        #expect(throws: QueryError.invalidValue(field: "limit", reason: "must be a whole number")) {
            try Query(from: ["limit": 2.5])
        }
        #expect(throws: QueryError.wrongType(field: "limit", expected: "number")) {
            try Query(from: ["limit": "10"])
        }
    }

    @Test func sortDirectionMustBeAscOrDesc() {
        do throws(QueryError) {
            _ = try Query(from: ["sort": [["field": "a", "direction": "up"]]])
            Issue.record("expected an error")
        } catch {
            #expect(error.field == "sort[0].direction")
            #expect(error.message.contains("asc"))
        }
        #expect(throws: QueryError.self) { try Query(from: ["sort": ["a": "DOWN"]]) }
        #expect(throws: QueryError.wrongType(field: "sort", expected: "array of {field, direction} or object of directions")) {
            try Query(from: ["sort": "a"])
        }
        #expect(throws: QueryError.missingField(field: "sort[0].field")) {
            try Query(from: ["sort": [["direction": "asc"]]])
        }
    }

    @Test func unknownPredicateOperatorIsRejectedWithItsPath() {
        let wire: DataValue = ["predicate": ["op": "and", "children": [["op": "eq", "attribute": "a", "value": 1], ["op": "near"]]]]
        #expect(throws: QueryError.unknownOperator(field: "predicate.children[1].op", name: "near")) {
            try Query(from: wire)
        }
    }

    @Test func malformedPredicatesAreRejected() {
        #expect(throws: QueryError.missingField(field: "predicate.op")) { try Query(from: ["predicate": ["attribute": "a"]]) }
        #expect(throws: QueryError.wrongType(field: "predicate", expected: "object")) { try Query(from: ["predicate": 5]) }
        #expect(throws: QueryError.wrongType(field: "predicate.attribute", expected: "string")) {
            try Query(from: ["predicate": ["op": "eq", "attribute": 5]])
        }
        #expect(throws: QueryError.wrongType(field: "predicate.children", expected: "array of predicates")) {
            try Query(from: ["predicate": ["op": "and", "children": ["op": "eq"]]])
        }
    }

    @Test func deeplyNestedPredicateIsRejectedNotOverflowed() {
        var node: DataValue = ["op": "eq", "attribute": "a", "value": 1]
        for _ in 0..<(PredicateNode.maximumDepth + 5) { node = ["op": "not", "children": [node]] }
        #expect(throws: QueryError.self) { try PredicateNode(from: node) }
    }

    @Test func unknownWhereOperatorIsRejected() {
        #expect(throws: QueryError.unknownOperator(field: "where.age.$regex", name: "$regex")) {
            try Query(from: ["where": ["age": ["$gt": 1, "$regex": "x"]]])
        }
        #expect(throws: QueryError.wrongType(field: "where.age.$in", expected: "array")) {
            try Query(from: ["where": ["age": ["$in": 3]]])
        }
        #expect(throws: QueryError.wrongType(field: "where", expected: "object")) { try Query(from: ["where": [1, 2]]) }
    }

    @Test func aggregationsAreValidated() {
        #expect(throws: QueryError.unknownOperator(field: "aggregations[0].func", name: "median")) {
            try Query(from: ["aggregations": [["func": "median", "field": "x"]]])
        }
        #expect(throws: QueryError.missingField(field: "aggregations[1].field")) {
            try Query(from: ["aggregations": [["func": "count"], ["func": "sum"]]])
        }
        #expect(throws: QueryError.wrongType(field: "groupBy[1]", expected: "string")) {
            try Query(from: ["groupBy": ["a", 1]])
        }
    }

    @Test func queryMustBeAnObject() {
        #expect(throws: QueryError.wrongType(field: "query", expected: "object")) { try Query(from: .null) }
    }

    @Test func predicateKeepsFullTextAndPolicyKeysOnReencode() throws {
        let wire: DataValue = [
            "op": "match", "attribute": "body", "query": "neural nets",
            "matchOptions": ["minScore": 1.0, "operator": "and"], "slop": 1, "prefix": "neu",
            "maxExpansions": 50, "valueRef": "auth.sub", "value": .null,
        ]
        let node = try PredicateNode(from: wire)
        #expect(node.query == "neural nets")
        #expect(node.slop == 1)
        #expect(node.maxExpansions == 50)
        #expect(node.value == .null)
        #expect(node.dataValue == wire)
    }

    @Test func predicateEncodingOmitsAbsentKeys() {
        let node = PredicateNode.not(.leaf(.isNull, "a"))
        #expect(node.dataValue == ["op": "not", "children": [["op": "isNull", "attribute": "a"]]])
    }

    @Test func everyOperatorNameDecodes() throws {
        for op in PredicateOperator.allCases {
            #expect(try PredicateNode(from: ["op": .string(op.rawValue)]).op == op)
        }
    }
}
