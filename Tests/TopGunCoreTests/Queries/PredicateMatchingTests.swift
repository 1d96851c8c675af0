import Testing
@testable import TopGunCore

private let person: DataValue = [
    "name": "Alice",
    "age": 30,
    "score": 85.5,
    "tags": ["admin", "beta"],
    "bio": "Loves Machine Learning and distributed systems",
    "address": ["city": "Paris", "zip": "75001"],
    "nickname": .null,
    "active": true,
]

private func holds(_ node: PredicateNode, on value: DataValue = person, key: String = "user-1") -> Bool {
    node.matches(key: key, value: value)
}

@Suite struct PredicateComparisonTests {
    @Test func eqMatchesEqualValueOnly() {
        #expect(holds(.leaf(.eq, "name", "Alice")))
        #expect(!holds(.leaf(.eq, "name", "alice")))
        #expect(!holds(.leaf(.eq, "age", 31)))
    }

    /// Strings are equal as JavaScript's `===` says: code unit for code unit, with no
    /// Unicode normalization ("caf\u{e9}" is not "cafe\u{301}"), and so are property names.
    @Test func eqComparesStringsAndFieldNamesByteForByte() {
        let value: DataValue = .object(DataObject(fields: [
            DataObject.Field(key: "caf\u{e9}", value: "composed"), DataObject.Field(key: "cafe\u{301}", value: "decomposed"),
        ]))
        #expect(holds(.leaf(.eq, "caf\u{e9}", "composed"), on: value))
        #expect(holds(.leaf(.eq, "cafe\u{301}", "decomposed"), on: value))
        #expect(!holds(.leaf(.eq, "caf\u{e9}", "decomposed"), on: value))
        #expect(!holds(.leaf(.eq, "name", "Alic\u{e9}"), on: ["name": "Alice\u{301}"]))
        #expect(holds(.leaf(.eq, "name", "Alic\u{e9}"), on: ["name": "Alic\u{e9}"]))
    }

    @Test func eqComparesIntAndWholeDoubleAsEqual() {
        #expect(holds(.leaf(.eq, "age", 30.0)))
        #expect(!holds(.leaf(.eq, "age", 30.5)))
    }

    @Test func neqMatchesDifferentValueAndIsFalseOnMissingOrNull() {
        #expect(holds(.leaf(.neq, "name", "Bob")))
        #expect(!holds(.leaf(.neq, "name", "Alice")))
        #expect(!holds(.leaf(.neq, "missing", "x")))
        #expect(!holds(.leaf(.neq, "nickname", "x")))
    }

    @Test func orderingOperatorsCompareNumbersAcrossKinds() {
        #expect(holds(.leaf(.gt, "age", 29.5)))
        #expect(!holds(.leaf(.gt, "age", 30.0)))
        #expect(holds(.leaf(.gte, "age", 30.0)))
        #expect(!holds(.leaf(.gte, "age", 30.000001)))
        #expect(holds(.leaf(.lt, "score", 86)))
        #expect(!holds(.leaf(.lt, "score", 85)))
        #expect(holds(.leaf(.lte, "score", 85.5)))
        #expect(!holds(.leaf(.lte, "score", 85)))
        #expect(holds(.leaf(.lt, "age", .uint(UInt64.max))))
        #expect(!holds(.leaf(.gt, "age", .uint(UInt64.max))))
    }

    @Test func largeIntegersCompareExactlyWithDoubles() {
        let big: DataValue = ["n": .int(Int64.max)]
        // 2^63 as a double is greater than Int64.max even though Double(Int64.max) == 2^63.
        #expect(holds(.leaf(.lt, "n", 9_223_372_036_854_775_808.0), on: big))
        #expect(!holds(.leaf(.eq, "n", 9_223_372_036_854_775_808.0), on: big))
        let odd: DataValue = ["n": .int(9_007_199_254_740_993)]
        #expect(holds(.leaf(.gt, "n", 9_007_199_254_740_992.0), on: odd))
    }

    @Test func orderingOperatorsCompareStringsByBytes() {
        #expect(holds(.leaf(.gt, "name", "Aardvark")))
        #expect(holds(.leaf(.lt, "name", "Bob")))
        // Upper case sorts before lower case in byte order.
        #expect(holds(.leaf(.lt, "name", "alice")))
        #expect(holds(.leaf(.gt, "name", "Alic")))
        let accented: DataValue = ["s": "é"]
        #expect(holds(.leaf(.gt, "s", "z"), on: accented))
    }

    @Test func orderingBetweenDifferentKindsIsFalse() {
        #expect(!holds(.leaf(.gt, "name", 5)))
        #expect(!holds(.leaf(.lt, "name", 5)))
        #expect(!holds(.leaf(.gt, "age", "10")))
        #expect(!holds(.leaf(.lte, "active", true)))
        #expect(!holds(.leaf(.gte, "tags", ["admin"])))
    }

    @Test func nanComparesWithNothing() {
        let value: DataValue = ["x": .double(.nan)]
        #expect(!holds(.leaf(.gt, "x", 0), on: value))
        #expect(!holds(.leaf(.lte, "x", 0), on: value))
        #expect(!holds(.leaf(.gte, "x", .double(.nan)), on: value))
    }

    @Test func betweenIsInclusiveOnBothEnds() {
        #expect(holds(.leaf(.between, "age", [30, 40])))
        #expect(holds(.leaf(.between, "age", [20, 30])))
        #expect(holds(.leaf(.between, "age", [29.5, 30.5])))
        #expect(!holds(.leaf(.between, "age", [31, 40])))
        #expect(!holds(.leaf(.between, "age", [10, 29])))
        #expect(holds(.leaf(.between, "name", ["A", "B"])))
    }

    @Test func betweenNeedsATwoElementArray() {
        #expect(!holds(.leaf(.between, "age", [20])))
        #expect(!holds(.leaf(.between, "age", [20, 30, 40])))
        #expect(!holds(.leaf(.between, "age", 30)))
    }

    @Test func betweenChildrenFormRequiresEveryBound() {
        let inRange = PredicateNode(op: .between, attribute: "age", children: [.leaf(.gte, "age", 25), .leaf(.lte, "age", 35)])
        let outOfRange = PredicateNode(op: .between, children: [.leaf(.gte, "age", 31), .leaf(.lte, "age", 35)])
        #expect(holds(inRange))
        #expect(!holds(outOfRange))
        #expect(!holds(PredicateNode(op: .between, attribute: "age")))
    }
}

@Suite struct PredicatePatternTests {
    @Test func likeIsCaseInsensitiveAndAnchored() {
        #expect(holds(.leaf(.like, "name", "ali%")))
        #expect(holds(.leaf(.like, "name", "ALICE")))
        #expect(holds(.leaf(.like, "name", "%ICE")))
        #expect(!holds(.leaf(.like, "name", "lic")))
        #expect(!holds(.leaf(.like, "name", "Alic")))
        #expect(!holds(.leaf(.like, "name", "x%")))
    }

    @Test func likeUnderscoreMatchesExactlyOneCharacter() {
        #expect(holds(.leaf(.like, "name", "A_ice")))
        #expect(holds(.leaf(.like, "name", "_____")))
        #expect(!holds(.leaf(.like, "name", "A__ice")))
        #expect(!holds(.leaf(.like, "name", "____")))
    }

    @Test func likePercentMatchesEmptyRunsAndBacktracks() {
        #expect(holds(.leaf(.like, "name", "%%Alice%")))
        #expect(holds(.leaf(.like, "bio", "%ma%ing%")))
        #expect(!holds(.leaf(.like, "bio", "%ma%zzz%")))
        #expect(holds(.leaf(.like, "x", "a%b%c"), on: ["x": "aXbYbZc"]))
        #expect(!holds(.leaf(.like, "x", "a%b%c"), on: ["x": "aXbYbZ"]))
    }

    @Test func likeTreatsRegexCharactersLiterally() {
        #expect(holds(.leaf(.like, "x", "a.b(c)"), on: ["x": "A.B(C)"]))
        #expect(!holds(.leaf(.like, "x", "a.b"), on: ["x": "axb"]))
        #expect(holds(.leaf(.like, "x", ""), on: ["x": ""]))
        #expect(!holds(.leaf(.like, "x", ""), on: ["x": "a"]))
    }

    @Test func likeOnNonStringIsFalse() {
        #expect(!holds(.leaf(.like, "age", "%")))
        #expect(!holds(.leaf(.like, "name", 5)))
    }

    @Test func regexSearchesUnanchoredAndIsCaseSensitive() {
        #expect(holds(.leaf(.regex, "name", "lic")))
        #expect(holds(.leaf(.regex, "name", "^Al.*e$")))
        #expect(!holds(.leaf(.regex, "name", "^lic")))
        #expect(!holds(.leaf(.regex, "name", "ALICE")))
        #expect(holds(.leaf(.regex, "name", "(?i)^alice$")))
        #expect(holds(.leaf(.regex, "address.zip", "^\\d{5}$")))
    }

    @Test func invalidRegexMatchesNothingWithoutCrashing() {
        #expect(!holds(.leaf(.regex, "name", "[invalid")))
        #expect(!holds(.leaf(.regex, "name", "(unclosed")))
        #expect(!holds(.leaf(.regex, "age", "\\d+")))
    }

    @Test func regexFollowsAValueChangedAfterConstruction() {
        var node = PredicateNode.leaf(.regex, "name", "^Bob")
        #expect(!holds(node))
        node.value = "^Ali"
        #expect(holds(node))
    }

    @Test func startsWithAndEndsWithAreCaseSensitive() {
        #expect(holds(.leaf(.startsWith, "name", "Al")))
        #expect(!holds(.leaf(.startsWith, "name", "al")))
        #expect(holds(.leaf(.endsWith, "name", "ice")))
        #expect(!holds(.leaf(.endsWith, "name", "ICE")))
        #expect(!holds(.leaf(.startsWith, "age", "3")))
        #expect(!holds(.leaf(.endsWith, "name", 5)))
    }
}

@Suite struct PredicateMembershipTests {
    @Test func inMatchesWhenFieldEqualsAnElement() {
        #expect(holds(.leaf(.in, "name", ["Bob", "Alice"])))
        #expect(holds(.leaf(.in, "age", [1, 30.0])))
        #expect(!holds(.leaf(.in, "name", ["Bob", "Carol"])))
        #expect(!holds(.leaf(.in, "name", [])))
    }

    @Test func inMatchesWhenArrayFieldContainsTheScalar() {
        #expect(holds(.leaf(.in, "tags", "beta")))
        #expect(!holds(.leaf(.in, "tags", "gamma")))
        #expect(!holds(.leaf(.in, "name", "Alice")))
    }

    @Test func containsFindsCaseInsensitiveSubstringsInStrings() {
        #expect(holds(.leaf(.contains, "bio", "machine")))
        #expect(!holds(.leaf(.contains, "bio", "quantum")))
        #expect(!holds(.leaf(.contains, "age", "3")))
    }

    @Test func containsFindsElementsInArrays() {
        #expect(holds(.leaf(.contains, "tags", "admin")))
        #expect(!holds(.leaf(.contains, "tags", "adm")))
    }

    @Test func containsAllNeedsEveryElement() {
        #expect(holds(.leaf(.containsAll, "tags", ["admin", "beta"])))
        #expect(holds(.leaf(.containsAll, "tags", "admin")))
        #expect(holds(.leaf(.containsAll, "tags", [])))
        #expect(!holds(.leaf(.containsAll, "tags", ["admin", "gamma"])))
    }

    @Test func containsAnyNeedsOneElement() {
        #expect(holds(.leaf(.containsAny, "tags", ["gamma", "beta"])))
        #expect(!holds(.leaf(.containsAny, "tags", ["gamma", "delta"])))
        #expect(!holds(.leaf(.containsAny, "tags", [])))
    }

    @Test func containsAllAndAnyOnStringsTestSubstrings() {
        #expect(holds(.leaf(.containsAll, "bio", ["LOVES", "systems"])))
        #expect(!holds(.leaf(.containsAll, "bio", ["loves", "quantum"])))
        #expect(holds(.leaf(.containsAny, "bio", ["quantum", "distributed"])))
        #expect(!holds(.leaf(.containsAny, "bio", ["quantum", 5])))
        #expect(!holds(.leaf(.containsAll, "age", [30])))
    }
}

@Suite struct PredicateNullAndPathTests {
    @Test func leafOnMissingOrNullAttributeIsFalse() {
        for op in [PredicateOperator.eq, .gt, .gte, .lt, .lte, .like, .regex, .in, .contains, .startsWith] {
            #expect(!holds(.leaf(op, "missing", "x")), "\(op) on a missing attribute")
            #expect(!holds(.leaf(op, "nickname", "x")), "\(op) on a null attribute")
        }
        #expect(!holds(.leaf(.eq, "nickname", nil)))
    }

    @Test func isNullMatchesMissingAndNullOnly() {
        #expect(holds(.leaf(.isNull, "missing")))
        #expect(holds(.leaf(.isNull, "nickname")))
        #expect(!holds(.leaf(.isNull, "name")))
        #expect(!holds(.leaf(.isNull, "active")))
    }

    @Test func isNotNullMatchesPresentValuesOnly() {
        #expect(holds(.leaf(.isNotNull, "name")))
        #expect(holds(.leaf(.isNotNull, "address.city")))
        #expect(!holds(.leaf(.isNotNull, "missing")))
        #expect(!holds(.leaf(.isNotNull, "nickname")))
    }

    @Test func dottedPathsReachNestedFields() {
        #expect(holds(.leaf(.eq, "address.city", "Paris")))
        #expect(!holds(.leaf(.eq, "address.city", "Rome")))
        #expect(!holds(.leaf(.eq, "address.city.name", "Paris")))
        #expect(!holds(.leaf(.eq, "name.first", "Alice")))
    }

    @Test func literalDottedFieldNameWinsOverPath() {
        let value: DataValue = ["a.b": 1, "a": ["b": 2]]
        #expect(holds(.leaf(.eq, "a.b", 1), on: value))
        #expect(!holds(.leaf(.eq, "a.b", 2), on: value))
    }

    @Test func keyAttributeResolvesToRecordKeyWhenAbsentFromValue() {
        #expect(holds(.leaf(.eq, "_key", "user-1")))
        #expect(holds(.leaf(.eq, "key", "user-1")))
        #expect(!holds(.leaf(.eq, "_key", "user-2")))
        #expect(holds(.leaf(.startsWith, "_key", "user-"), on: "a plain string value"))
        // A field of that name in the value wins.
        #expect(holds(.leaf(.eq, "key", "inner"), on: ["key": "inner"]))
        #expect(!holds(.leaf(.eq, "key", "user-1"), on: ["key": "inner"]))
    }

    @Test func leafWithoutAttributeIsFalse() {
        #expect(!holds(PredicateNode(op: .eq, value: "Alice")))
        #expect(!holds(PredicateNode(op: .isNull)))
    }

    @Test func nonObjectValuesHaveNoFields() {
        #expect(!holds(.leaf(.eq, "name", "Alice"), on: "Alice"))
        #expect(holds(.leaf(.isNull, "name"), on: 42))
    }
}

@Suite struct PredicateCombinatorTests {
    private let isAdult = PredicateNode.leaf(.gte, "age", 18)
    private let isBob = PredicateNode.leaf(.eq, "name", "Bob")

    @Test func andNeedsEveryChild() {
        #expect(holds(.and([isAdult, .leaf(.eq, "name", "Alice")])))
        #expect(!holds(.and([isAdult, isBob])))
    }

    @Test func orNeedsOneChild() {
        #expect(holds(.or([isBob, isAdult])))
        #expect(!holds(.or([isBob, .leaf(.lt, "age", 18)])))
    }

    @Test func notNegatesItsChild() {
        #expect(holds(.not(isBob)))
        #expect(!holds(.not(isAdult)))
    }

    @Test func emptyCombinatorsFollowVacuousTruth() {
        #expect(holds(.and([])))
        #expect(holds(PredicateNode(op: .and)))
        #expect(!holds(.or([])))
        #expect(!holds(PredicateNode(op: .or)))
        #expect(holds(PredicateNode(op: .not)))
        #expect(holds(PredicateNode(op: .not, children: [])))
    }

    @Test func notOfMissingAttributeLeafIsTrue() {
        #expect(holds(.not(.leaf(.eq, "missing", 1))))
    }
}

@Suite struct PredicateValueRefTests {
    @Test func dataValueRefComparesWithAnotherField() {
        let value: DataValue = ["owner": "u1", "editor": "u1", "viewer": "u2"]
        #expect(holds(PredicateNode(op: .eq, attribute: "owner", valueRef: "data.editor"), on: value))
        #expect(!holds(PredicateNode(op: .eq, attribute: "owner", valueRef: "data.viewer"), on: value))
    }

    @Test func authValueRefUsesThePrincipal() {
        let node = PredicateNode(op: .eq, attribute: "owner", value: "ignored", valueRef: "auth.sub")
        let value: DataValue = ["owner": "u1"]
        #expect(node.matches(key: "k", value: value, auth: ["sub": "u1"]))
        #expect(!node.matches(key: "k", value: value, auth: ["sub": "u2"]))
        #expect(!node.matches(key: "k", value: value, auth: nil))
    }

    @Test func unknownValueRefNamespaceIsFalse() {
        let node = PredicateNode(op: .eq, attribute: "owner", valueRef: "env.user")
        #expect(!holds(node, on: ["owner": "u1"]))
    }
}

@Suite struct FullTextStandInTests {
    @Test func matchFindsAnyQueryWordByDefault() {
        #expect(holds(PredicateNode(op: .match, attribute: "bio", query: "machine quantum")))
        #expect(!holds(PredicateNode(op: .match, attribute: "bio", query: "quantum physics")))
    }

    @Test func matchWithAndOperatorNeedsEveryWord() {
        let options: DataObject = ["operator": "and"]
        #expect(holds(PredicateNode(op: .match, attribute: "bio", query: "LEARNING machine", matchOptions: options)))
        #expect(!holds(PredicateNode(op: .match, attribute: "bio", query: "machine quantum", matchOptions: options)))
    }

    @Test func matchPhraseNeedsWordsInARow() {
        #expect(holds(PredicateNode(op: .matchPhrase, attribute: "bio", query: "machine learning")))
        #expect(!holds(PredicateNode(op: .matchPhrase, attribute: "bio", query: "learning machine")))
        #expect(!holds(PredicateNode(op: .matchPhrase, attribute: "bio", query: "loves distributed")))
    }

    @Test func matchPrefixFindsAWordStartingWithThePrefix() {
        #expect(holds(PredicateNode(op: .matchPrefix, attribute: "bio", prefix: "distr")))
        #expect(!holds(PredicateNode(op: .matchPrefix, attribute: "bio", prefix: "stributed")))
    }

    @Test func multiMatchSearchesEveryListedField() {
        #expect(holds(PredicateNode(op: .multiMatch, value: ["name", "bio"], query: "alice")))
        #expect(!holds(PredicateNode(op: .multiMatch, value: ["name"], query: "machine")))
    }

    @Test func fullTextOnNonTextFieldIsFalse() {
        #expect(!holds(PredicateNode(op: .match, attribute: "age", query: "30")))
        #expect(!holds(PredicateNode(op: .match, attribute: "bio", query: "")))
    }
}
