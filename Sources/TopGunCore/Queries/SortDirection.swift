/// Ascending or descending, spelled `"asc"` / `"desc"` on the wire.
public enum SortDirection: String, Sendable, CaseIterable {
    case asc
    case desc
}
