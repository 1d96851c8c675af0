/// Runs a one-shot query over a snapshot of records: filter, group, sort, resume after the
/// cursor, then cut to the limit and the server cap. Pure: the caller supplies the records
/// and the current time.
public struct QueryExecutor: Sendable {
    /// The server cap on one response (Rust `max_query_records`).
    public static let defaultMaxResults = 10_000
    /// How long a cursor stays usable: 10 minutes.
    public static let defaultCursorLifetimeMillis: Int64 = 10 * 60 * 1000

    public var maxResults: Int
    public var cursorLifetimeMillis: Int64

    public init(maxResults: Int = defaultMaxResults, cursorLifetimeMillis: Int64 = defaultCursorLifetimeMillis) {
        self.maxResults = max(0, maxResults)
        self.cursorLifetimeMillis = cursorLifetimeMillis
    }

    /// One page of `query` over `records` (a `[String: DataValue]` works as is).
    ///
    /// * Order: ``SortOrder``'s rule, ties (and queries without sort) by key ascending.
    /// * Grouped queries (`groupBy`/`aggregations`) page over the group rows of
    ///   ``GroupAggregator``; their sort fields refer to the group row's fields.
    /// * Cursor: a valid one resumes right after the row it names (by position, so rows
    ///   written since do not shift the page); an unreadable one, or one from a query with a
    ///   different filter, grouping or sort, is `invalid`; one older than
    ///   ``cursorLifetimeMillis`` is `expired`. Both of those start from the first row.
    /// * At most `min(limit, maxResults)` rows; `hasMore` when rows remain; `nextCursor` only
    ///   when `hasMore` and the query has a `limit`.
    public func execute(
        _ query: Query, records: some Sequence<(key: String, value: DataValue)>, nowMillis: Int64,
        auth: DataValue? = nil
    ) -> QueryPage {
        var matching: [QueryRecord] = []
        for (key, value) in records where query.evaluate(key: key, value: value, auth: auth) {
            matching.append(QueryRecord(key: key, value: value))
        }
        return page(of: matching, query: query, nowMillis: nowMillis)
    }

    /// ``execute(_:records:nowMillis:auth:)`` over ``QueryRecord`` values.
    public func execute(
        _ query: Query, records: some Sequence<QueryRecord>, nowMillis: Int64, auth: DataValue? = nil
    ) -> QueryPage {
        let matching = records.filter { query.evaluate(key: $0.key, value: $0.value, auth: auth) }
        return page(of: matching, query: query, nowMillis: nowMillis)
    }

    /// A page's byte budget: rows are cut where their `cost` would pass `maxBytes` (at least
    /// one row is always kept), so no response grows with the data. A page cut this way has
    /// `hasMore` and a `nextCursor` that resumes after its last row (with or without `limit`).
    public struct ByteBudget {
        public var maxBytes: Int
        public var cost: (QueryRecord) -> Int

        public init(maxBytes: Int, cost: @escaping (QueryRecord) -> Int) {
            self.maxBytes = maxBytes
            self.cost = cost
        }
    }

    /// ``execute(_:records:nowMillis:auth:)`` with the page also cut by `budget`, keeping no
    /// value it does not return: `records` are read once, each value dropped once its match
    /// and position are known, and the page's values are read again through `lookup` (the
    /// source's current value of a key). A query over a large map then holds the positions of
    /// its matches, not a copy of every matching value. Grouped queries aggregate the matching
    /// values as they come.
    public func execute(
        _ query: Query, records: some Sequence<(key: String, value: DataValue)>, nowMillis: Int64, auth: DataValue? = nil,
        budget: ByteBudget, lookup: (String) -> DataValue?
    ) -> QueryPage {
        if query.isGrouped {
            var matching: [QueryRecord] = []
            for (key, value) in records where query.evaluate(key: key, value: value, auth: auth) {
                matching.append(QueryRecord(key: key, value: value))
            }
            return page(of: matching, query: query, nowMillis: nowMillis, budget: budget)
        }
        let ordering = RecordOrdering(query.sort)
        var positions: [RecordPosition] = []
        for (key, value) in records where query.evaluate(key: key, value: value, auth: auth) {
            positions.append(ordering.position(key: key, value: value))
        }
        positions.sort { ordering.compare($0, $1) == .less }
        return cut(positions, query: query, ordering: ordering, nowMillis: nowMillis, budget: budget) { position in
            QueryRecord(key: position.key, value: lookup(position.key) ?? .null)
        }
    }

    private func page(of matching: [QueryRecord], query: Query, nowMillis: Int64, budget: ByteBudget? = nil) -> QueryPage {
        let rows: [QueryRecord]
        if query.isGrouped {
            rows = GroupAggregator.aggregate(matching, groupBy: query.groupBy ?? [], aggregations: query.aggregations ?? [])
        } else {
            rows = matching
        }
        let ordering = RecordOrdering(query.sort)
        var positioned = rows.map { (position: ordering.position(key: $0.key, value: $0.value), record: $0) }
        positioned.sort { ordering.compare($0.position, $1.position) == .less }
        let records = Dictionary(positioned.map { (HashedKey($0.record.key), $0.record) }, uniquingKeysWith: { first, _ in first })
        return cut(positioned.map(\.position), query: query, ordering: ordering, nowMillis: nowMillis, budget: budget) { position in
            records[HashedKey(position.key)] ?? QueryRecord(key: position.key, value: .null)
        }
    }

    /// The page of `positions` (in query order): resume after the cursor, then cut to the
    /// limit, the server cap and the budget; `record` gives a position's row.
    private func cut(
        _ positions: [RecordPosition], query: Query, ordering: RecordOrdering, nowMillis: Int64, budget: ByteBudget?,
        record: (RecordPosition) -> QueryRecord
    ) -> QueryPage {
        var start = 0
        var status = CursorStatus.none
        if let encoded = query.cursor {
            switch check(encoded, query: query, nowMillis: nowMillis) {
            case .valid(let cursor):
                status = .valid
                start = ordering.firstIndex(in: positions, after: cursor.position)
            case .rejected(let reason):
                status = reason
            }
        }

        let pageSize = min(query.limit ?? maxResults, maxResults)
        let end = min(start + pageSize, positions.count)
        var results: [QueryRecord] = []
        var bytes = 0
        var cutByBytes = false
        for index in start..<max(start, end) {
            let row = record(positions[index])
            if let budget {
                bytes += budget.cost(row)
                if bytes > budget.maxBytes, !results.isEmpty {
                    cutByBytes = true
                    break
                }
            }
            results.append(row)
        }
        let last = start + results.count
        let hasMore = last < positions.count
        var nextCursor: String?
        if hasMore, query.limit != nil || cutByBytes, last > start {
            nextCursor = QueryCursor(position: positions[last - 1], query: query, issuedAtMillis: nowMillis).encoded
        }
        return QueryPage(results: results, hasMore: hasMore, nextCursor: nextCursor, cursorStatus: status)
    }

    private enum CursorCheck {
        case valid(QueryCursor)
        case rejected(CursorStatus)
    }

    private func check(_ encoded: String, query: Query, nowMillis: Int64) -> CursorCheck {
        guard let cursor = QueryCursor(encoded: encoded),
            cursor.position.sortValues.count == (query.sort?.fields.count ?? 0),
            cursor.filterHash == QueryCursor.filterHash(of: query),
            cursor.sortHash == QueryCursor.sortHash(of: query)
        else { return .rejected(.invalid) }
        // Subtract with overflow in mind: a forged issue time must not trap.
        let (age, overflow) = nowMillis.subtractingReportingOverflow(cursor.issuedAtMillis)
        if overflow || age > cursorLifetimeMillis { return .rejected(.expired) }
        return .valid(cursor)
    }

}
