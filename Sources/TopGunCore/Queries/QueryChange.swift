/// One change to a live query's visible result, sent as a `QUERY_UPDATE`.
public enum QueryChange: Sendable, Equatable {
    /// The record became visible.
    case enter(key: String, value: DataValue)
    /// A visible record was written and stays visible.
    case update(key: String, value: DataValue)
    /// The record is no longer visible (deleted, no longer matching, or pushed out of the
    /// top N). Sent with `value: nil`.
    case leave(key: String)

    public var key: String {
        switch self {
        case .enter(let key, _), .update(let key, _), .leave(let key): return key
        }
    }

    /// The value to send; nil for a leave.
    public var value: DataValue? {
        switch self {
        case .enter(_, let value), .update(_, let value): return value
        case .leave: return nil
        }
    }

    /// `QUERY_UPDATE.changeType`: `"ENTER"`, `"UPDATE"` or `"LEAVE"`.
    public var changeType: String {
        switch self {
        case .enter: return "ENTER"
        case .update: return "UPDATE"
        case .leave: return "LEAVE"
        }
    }
}
