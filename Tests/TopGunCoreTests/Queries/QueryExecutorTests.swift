import Testing
@testable import TopGunCore

private let now: Int64 = 1_700_000_000_000

private func scores(_ count: Int) -> [String: DataValue] {
    var records: [String: DataValue] = [:]
    for i in 0..<count {
        records["k\(i < 10 ? "0" : "")\(i)"] = ["score": .int(Int64(i % 4)), "group": i % 2 == 0 ? "even" : "odd"]
    }
    return records
}

@Suite struct QueryExecutorTests {
    let executor = QueryExecutor()

    @Test func filtersSortsAndLimits() {
        let records: [String: DataValue] = ["a": ["n": 3], "b": ["n": 1], "c": ["n": 2], "d": ["n": 9], "e": ["x": 1]]
        let query = Query(predicate: .leaf(.lt, "n", 5), sort: SortOrder([SortField("n", .desc)]), limit: 2)
        let page = executor.execute(query, records: records, nowMillis: now)
        #expect(page.results.map(\.key) == ["a", "c"])
        #expect(page.hasMore)
        #expect(page.nextCursor != nil)
        #expect(page.cursorStatus == .none)
    }

    @Test func withoutSortOrdersByKey() {
        let page = executor.execute(Query(), records: ["b": 1, "a": 2, "c": 3], nowMillis: now)
        #expect(page.results == [QueryRecord(key: "a", value: 2), QueryRecord(key: "b", value: 1), QueryRecord(key: "c", value: 3)])
        #expect(!page.hasMore)
        #expect(page.nextCursor == nil)
    }

    @Test func tombstonesAreNeverResults() {
        let page = executor.execute(Query(), records: ["a": DataValue.null, "b": 1], nowMillis: now)
        #expect(page.results.map(\.key) == ["b"])
    }

    @Test func acceptsQueryRecords() {
        let records = [QueryRecord(key: "x", value: ["n": 1]), QueryRecord(key: "y", value: ["n": 2])]
        let page = executor.execute(Query(where: ["n": 2]), records: records, nowMillis: now)
        #expect(page.results.map(\.key) == ["y"])
    }

    @Test func lastPageHasNoMoreAndNoCursor() {
        let page = executor.execute(Query(limit: 5), records: scores(5), nowMillis: now)
        #expect(page.results.count == 5)
        #expect(!page.hasMore)
        #expect(page.nextCursor == nil)
    }

    @Test func limitZeroReturnsNothingButReportsMore() {
        let page = executor.execute(Query(limit: 0), records: scores(3), nowMillis: now)
        #expect(page.results.isEmpty)
        #expect(page.hasMore)
        #expect(page.nextCursor == nil)
    }

    @Test func serverCapTruncatesWithHasMore() {
        let capped = QueryExecutor(maxResults: 4)
        let noLimit = capped.execute(Query(), records: scores(10), nowMillis: now)
        #expect(noLimit.results.count == 4)
        #expect(noLimit.hasMore)
        #expect(noLimit.nextCursor == nil)
        let bigLimit = capped.execute(Query(limit: 100), records: scores(10), nowMillis: now)
        #expect(bigLimit.results.count == 4)
        #expect(bigLimit.hasMore)
        #expect(bigLimit.nextCursor != nil)
    }

    @Test func defaultCapIsTenThousand() {
        var records: [String: DataValue] = [:]
        for i in 0..<10_001 { records["r\(i)"] = .int(Int64(i)) }
        let page = executor.execute(Query(), records: records, nowMillis: now)
        #expect(QueryExecutor.defaultMaxResults == 10_000)
        #expect(page.results.count == 10_000)
        #expect(page.hasMore)
    }

    @Test func cursorPagingVisitsEveryRowOnceInOrder() {
        let records = scores(23)
        let sort = SortOrder([SortField("score", .desc), SortField("group")], wireForm: .object)
        let everything = executor.execute(Query(sort: sort), records: records, nowMillis: now).results
        var collected: [QueryRecord] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = executor.execute(Query(sort: sort, limit: 5, cursor: cursor), records: records, nowMillis: now + Int64(pages))
            #expect(page.cursorStatus == (cursor == nil ? .none : .valid))
            collected += page.results
            cursor = page.nextCursor
            #expect((cursor != nil) == page.hasMore)
            pages += 1
        } while cursor != nil && pages < 20
        #expect(pages == 5)
        #expect(collected == everything)
        #expect(Set(collected.map(\.key)).count == 23)
    }

    @Test func cursorResumesByPositionWhenRowsChangeBetweenPages() {
        var records = scores(10)
        let query = Query(limit: 4)
        let first = executor.execute(query, records: records, nowMillis: now)
        #expect(first.results.map(\.key) == ["k00", "k01", "k02", "k03"])
        records["k01"] = nil  // deleted from the first page
        records["k025"] = ["score": 1]  // inserted before the cursor: not repeated, not skipped after
        records["k035"] = ["score": 1]  // inserted after the cursor
        var next = query
        next.cursor = first.nextCursor
        let second = executor.execute(next, records: records, nowMillis: now)
        #expect(second.cursorStatus == .valid)
        #expect(second.results.map(\.key) == ["k035", "k04", "k05", "k06"])
    }

    @Test func cursorFromAnotherFilterIsInvalidAndRestarts() {
        let records = scores(10)
        let first = executor.execute(Query(where: ["group": "even"], limit: 2), records: records, nowMillis: now)
        let other = Query(where: ["group": "odd"], limit: 2, cursor: first.nextCursor)
        let page = executor.execute(other, records: records, nowMillis: now)
        #expect(page.cursorStatus == .invalid)
        #expect(page.results.map(\.key) == ["k01", "k03"])
    }

    @Test func cursorFromAnotherSortIsInvalid() {
        let records = scores(10)
        let first = executor.execute(Query(sort: SortOrder([SortField("score")]), limit: 2), records: records, nowMillis: now)
        let other = Query(sort: SortOrder([SortField("score", .desc)]), limit: 2, cursor: first.nextCursor)
        #expect(executor.execute(other, records: records, nowMillis: now).cursorStatus == .invalid)
    }

    @Test func cursorSurvivesSortWireFormAndPageSizeChanges() {
        let records = scores(10)
        let first = executor.execute(Query(sort: SortOrder([SortField("score")], wireForm: .array), limit: 2), records: records, nowMillis: now)
        let next = Query(sort: SortOrder([SortField("score")], wireForm: .object), limit: 3, cursor: first.nextCursor)
        #expect(executor.execute(next, records: records, nowMillis: now).cursorStatus == .valid)
    }

    @Test func cursorOlderThanTenMinutesIsExpiredAndRestarts() {
        let records = scores(6)
        let first = executor.execute(Query(limit: 2), records: records, nowMillis: now)
        let later = Query(limit: 2, cursor: first.nextCursor)
        let stillValid = executor.execute(later, records: records, nowMillis: now + 600_000)
        #expect(stillValid.cursorStatus == .valid)
        #expect(stillValid.results.map(\.key) == ["k02", "k03"])
        let expired = executor.execute(later, records: records, nowMillis: now + 600_001)
        #expect(expired.cursorStatus == .expired)
        #expect(expired.results.map(\.key) == ["k00", "k01"])
    }

    @Test(arguments: ["", "garbage!", "AAAA", "not base64 at all", "A", "AQ"])
    func garbageCursorIsInvalid(_ cursor: String) {
        let page = executor.execute(Query(limit: 2, cursor: cursor), records: scores(4), nowMillis: now)
        #expect(page.cursorStatus == .invalid)
        #expect(page.results.map(\.key) == ["k00", "k01"])
    }

    @Test func truncatedOrExtendedCursorIsInvalid() {
        let first = executor.execute(Query(limit: 2), records: scores(4), nowMillis: now)
        let cursor = first.nextCursor!
        for broken in [String(cursor.dropLast(3)), cursor + "AAAA"] {
            #expect(executor.execute(Query(limit: 2, cursor: broken), records: scores(4), nowMillis: now).cursorStatus == .invalid)
        }
    }

    @Test func cursorIsBase64URLWithoutPadding() {
        let sort = SortOrder([SortField("name")])
        let records: [String: DataValue] = ["a": ["name": "ü/+?"], "b": ["name": "üz"]]
        let cursor = executor.execute(Query(sort: sort, limit: 1), records: records, nowMillis: now).nextCursor!
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        #expect(cursor.allSatisfy(allowed.contains))
        let decoded = QueryCursor(encoded: cursor)
        #expect(decoded?.position.key == "a")
        #expect(decoded?.position.sortValues.first ?? nil == "ü/+?")
        #expect(decoded?.issuedAtMillis == now)
    }

    @Test func groupedQueryMatchesTheAggregationFixture() {
        // QUERY_SUB_GROUPBY_AGG.json over orders giving QUERY_RESP_AGG.json.
        let orders: [String: DataValue] = [
            "o1": ["category": "a", "price": 10], "o2": ["category": "a", "price": 25],
            "o3": ["category": "b", "price": 50],
        ]
        let query = Query(groupBy: ["category"], aggregations: [Aggregation(.count), Aggregation(.sum, field: "price")])
        let page = executor.execute(query, records: orders, nowMillis: now)
        #expect(page.results == [
            QueryRecord(key: "a", value: ["__key": "a", "__count": 2, "__sum_price": 35, "category": "a"]),
            QueryRecord(key: "b", value: ["__key": "b", "__count": 1, "__sum_price": 50, "category": "b"]),
        ])
        #expect(page.results[0].value.objectValue?.keys == ["__key", "__count", "__sum_price", "category"])
    }

    @Test func groupedQueryCanSortAndPageOverGroupRows() {
        let query = Query(sort: SortOrder([SortField("__count", .desc)]), limit: 1, groupBy: ["score"])
        let page = executor.execute(query, records: scores(7), nowMillis: now)
        // scores 0,1,2 occur twice, 3 once: the biggest groups tie, broken by key.
        #expect(page.results.map(\.key) == ["0"])
        let next = executor.execute(Query(sort: query.sort, limit: 5, cursor: page.nextCursor, groupBy: ["score"]), records: scores(7), nowMillis: now)
        #expect(next.cursorStatus == .valid)
        #expect(next.results.map(\.key) == ["1", "2", "3"])
    }
}
