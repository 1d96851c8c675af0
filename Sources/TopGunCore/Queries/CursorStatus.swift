/// What became of the cursor a query carried, reported as `QUERY_RESP.cursorStatus`.
public enum CursorStatus: String, Sendable, CaseIterable {
    /// The query carried no cursor.
    case none
    /// The cursor was accepted; results continue after it.
    case valid
    /// The cursor is older than the cursor lifetime; results start from the beginning.
    case expired
    /// The cursor is malformed or belongs to another query; results start from the beginning.
    case invalid
}
