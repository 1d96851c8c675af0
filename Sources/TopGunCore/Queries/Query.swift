/// The `query` of a `QUERY_SUB` (and of a one-shot query): filter, order, page and grouping.
///
/// Filtering uses `predicate` when present, else `where`, else matches everything (see
/// ``matches(key:value:auth:)``). Keys of the wire object other than the ones below (the
/// client leaves `fields` in it) are ignored.
public struct Query: Sendable, Equatable {
    /// Legacy filter; every entry must hold. `{field: value}` tests equality (`DataValue ==`);
    /// `{field: {$eq|$ne|$gt|$gte|$lt|$lte|$in: v}}` applies operators (an object counts as
    /// operators when it is non-empty and all its keys start with `$`; several must all
    /// hold). A field missing from the record fails its entry whatever the operator; a
    /// present one, null included, is compared by value. `$gt…$lte` order numbers with
    /// numbers and strings with strings only; `$in` holds when the field equals a list element
    /// or an array field shares one. Fields are dotted paths; `_key`/`key` fall back to the
    /// record key.
    public var `where`: DataObject?
    public var predicate: PredicateNode?
    public var sort: SortOrder?
    /// Page size; never negative.
    public var limit: Int?
    /// Opaque cursor from a previous page's `nextCursor`.
    public var cursor: String?
    public var groupBy: [String]?
    public var aggregations: [Aggregation]?

    public init(
        where: DataObject? = nil,
        predicate: PredicateNode? = nil,
        sort: SortOrder? = nil,
        limit: Int? = nil,
        cursor: String? = nil,
        groupBy: [String]? = nil,
        aggregations: [Aggregation]? = nil
    ) {
        self.where = `where`
        self.predicate = predicate
        self.sort = sort
        self.limit = limit
        self.cursor = cursor
        self.groupBy = groupBy
        self.aggregations = aggregations
    }

    /// Decodes the wire object. A key holding `null` counts as absent. Throws on wrong types,
    /// unknown operators, a sort direction other than asc/desc, or a negative or fractional
    /// `limit` (any numeric case is accepted for a whole number).
    public init(from dataValue: DataValue) throws(QueryError) {
        let object = try QueryDecoding.object(dataValue, at: "query")
        self.init()
        if let value = QueryDecoding.present(object, "where") {
            let clause = try QueryDecoding.object(value, at: "where")
            try WhereClause.validate(clause, at: "where")
            self.where = clause
        }
        if let value = QueryDecoding.present(object, "predicate") {
            self.predicate = try PredicateNode(from: value, path: "predicate", depth: 0)
        }
        if let value = QueryDecoding.present(object, "sort") {
            self.sort = try SortOrder(from: value, path: "sort")
        }
        if let value = QueryDecoding.present(object, "limit") {
            let limit = try QueryDecoding.wholeNumber(value, at: "limit")
            guard limit >= 0 else { throw .invalidValue(field: "limit", reason: "must not be negative") }
            self.limit = limit
        }
        self.cursor = try QueryDecoding.optionalString(object, "cursor", at: "")
        if let value = QueryDecoding.present(object, "groupBy") {
            self.groupBy = try QueryDecoding.stringArray(value, at: "groupBy")
        }
        if let value = QueryDecoding.present(object, "aggregations") {
            guard case .array(let elements) = value else {
                throw .wrongType(field: "aggregations", expected: "array of {func, field?}")
            }
            var aggregations: [Aggregation] = []
            for (index, element) in elements.enumerated() {
                aggregations.append(try Aggregation(from: element, path: "aggregations[\(index)]"))
            }
            self.aggregations = aggregations
        }
    }

    /// The wire object with only the present keys; `sort` in the form it arrived.
    public var dataValue: DataValue {
        var object = DataObject()
        if let `where` { object.append("where", .object(`where`)) }
        if let predicate { object.append("predicate", predicate.dataValue) }
        if let sort { object.append("sort", sort.dataValue) }
        if let limit { object.append("limit", .int(Int64(limit))) }
        if let cursor { object.append("cursor", .string(cursor)) }
        if let groupBy { object.append("groupBy", .array(groupBy.map(DataValue.string))) }
        if let aggregations { object.append("aggregations", .array(aggregations.map(\.dataValue))) }
        return .object(object)
    }

    /// Whether the query groups its matches into aggregate rows.
    public var isGrouped: Bool { groupBy != nil || aggregations != nil }
}
