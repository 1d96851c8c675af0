/// Where a record sits in a query's order: its sort-field values and its key.
struct RecordPosition: Sendable {
    /// One entry per sort field; nil when the record has no such attribute.
    var sortValues: [DataValue?]
    var key: String
}

/// The total order of records under an optional ``SortOrder``: by the sort fields (see
/// ``SortOrder`` for the rule), then by key ascending. Without sort fields, by key only.
struct RecordOrdering: Sendable {
    let fields: [SortField]

    init(_ sort: SortOrder?) {
        self.fields = sort?.fields ?? []
    }

    func position(key: String, value: DataValue) -> RecordPosition {
        RecordPosition(sortValues: fields.map { RecordAttribute.resolve($0.field, key: key, value: value) }, key: key)
    }

    func compare(_ lhs: RecordPosition, _ rhs: RecordPosition) -> ValueOrder {
        for (index, field) in fields.enumerated() {
            let lhsValue = index < lhs.sortValues.count ? lhs.sortValues[index] : nil
            let rhsValue = index < rhs.sortValues.count ? rhs.sortValues[index] : nil
            let order = ValueOrdering.sortCompare(lhsValue, rhsValue)
            if order != .equal { return field.direction == .asc ? order : order.reversed }
        }
        return ValueOrdering.compareStrings(lhs.key, rhs.key)
    }
}

extension RecordOrdering {
    /// The first index of `rows` (in this order) whose position sorts after `position`:
    /// where a page that resumes after `position` starts.
    func firstIndex(in rows: [RecordPosition], after position: RecordPosition) -> Int {
        var low = 0
        var high = rows.count
        while low < high {
            let mid = (low + high) / 2
            if compare(rows[mid], position) == .greater { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
