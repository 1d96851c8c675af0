/// One page of a one-shot query's results, in order, as `QUERY_RESP` carries it.
public struct QueryPage: Sendable, Equatable {
    public var results: [QueryRecord]
    /// True when more results follow this page (after the limit or the server cap).
    public var hasMore: Bool
    /// Opaque cursor for the next page; only when `hasMore` and the query has a `limit`.
    public var nextCursor: String?
    public var cursorStatus: CursorStatus

    public init(results: [QueryRecord], hasMore: Bool, nextCursor: String?, cursorStatus: CursorStatus) {
        self.results = results
        self.hasMore = hasMore
        self.nextCursor = nextCursor
        self.cursorStatus = cursorStatus
    }
}
