/// The `sort` of a query: sort fields in priority order, plus the wire form they arrived in.
///
/// The HEAD client sends an array `[{field, direction}]`; published 2.0.x clients send an
/// object `{field: "asc"|"desc"}` whose key order is the priority. ``wireForm`` remembers
/// which, so ``dataValue`` answers in the same form.
///
/// Ordering rule (see ``areInIncreasingOrder(_:_:)``): field by field, values compare by kind
/// (bool < number < string < binary < array < object) then within the kind; a missing or
/// null value is greater than any value, so it sorts **last ascending and first
/// descending** (the Rust server's rule). Ties are broken by record key ascending (UTF-8
/// bytes), whatever the directions, so the order is total and deterministic.
public struct SortOrder: Sendable, Equatable {
    /// How `sort` was spelled on the wire.
    public enum WireForm: Sendable, Equatable {
        /// `[{field, direction}]` (HEAD client, Rust server).
        case array
        /// `{field: direction}` (published 2.0.x clients, legacy server).
        case object
    }

    public var fields: [SortField]
    public var wireForm: WireForm

    public init(_ fields: [SortField], wireForm: WireForm = .array) {
        self.fields = fields
        self.wireForm = wireForm
    }

    /// Decodes either wire form. `direction` may be absent in the array form (ascending).
    public init(from dataValue: DataValue) throws(QueryError) {
        try self.init(from: dataValue, path: "sort")
    }

    init(from dataValue: DataValue, path: String) throws(QueryError) {
        switch dataValue {
        case .array(let elements):
            var fields: [SortField] = []
            fields.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                let elementPath = "\(path)[\(index)]"
                let object = try QueryDecoding.object(element, at: elementPath)
                guard let name = QueryDecoding.present(object, "field") else {
                    throw .missingField(field: "\(elementPath).field")
                }
                let field = try QueryDecoding.string(name, at: "\(elementPath).field")
                var direction = SortDirection.asc
                if let spelled = QueryDecoding.present(object, "direction") {
                    direction = try Self.direction(spelled, at: "\(elementPath).direction")
                }
                fields.append(SortField(field, direction))
            }
            self.init(fields, wireForm: .array)
        case .object(let object):
            var fields: [SortField] = []
            fields.reserveCapacity(object.count)
            for entry in object.fields {
                fields.append(SortField(entry.key, try Self.direction(entry.value, at: "\(path).\(entry.key)")))
            }
            self.init(fields, wireForm: .object)
        default:
            throw .wrongType(field: path, expected: "array of {field, direction} or object of directions")
        }
    }

    private static func direction(_ value: DataValue, at path: String) throws(QueryError) -> SortDirection {
        let name = try QueryDecoding.string(value, at: path)
        guard let direction = SortDirection(rawValue: name) else {
            throw .invalidValue(field: path, reason: "must be \"asc\" or \"desc\", not \"\(name)\"")
        }
        return direction
    }

    /// The wire form, in the form it arrived.
    public var dataValue: DataValue {
        switch wireForm {
        case .array:
            return .array(fields.map { .object(["field": .string($0.field), "direction": .string($0.direction.rawValue)]) })
        case .object:
            return .object(DataObject(fields: fields.map { DataObject.Field(key: $0.field, value: .string($0.direction.rawValue)) }))
        }
    }

    /// Strict "sorts before" for two records under this order (ties broken by key).
    public func areInIncreasingOrder(
        _ lhs: (key: String, value: DataValue), _ rhs: (key: String, value: DataValue)
    ) -> Bool {
        let ordering = RecordOrdering(self)
        return ordering.compare(ordering.position(key: lhs.key, value: lhs.value), ordering.position(key: rhs.key, value: rhs.value)) == .less
    }
}
