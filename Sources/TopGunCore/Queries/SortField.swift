/// One sort key: an attribute (dotted path, or `_key` for the record key) and a direction.
public struct SortField: Sendable, Equatable {
    public var field: String
    public var direction: SortDirection

    public init(_ field: String, _ direction: SortDirection = .asc) {
        self.field = field
        self.direction = direction
    }
}
