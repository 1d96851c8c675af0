/// One aggregation of a grouped query: a function and, except for `count`, a field.
public struct Aggregation: Sendable, Equatable {
    /// The aggregation functions of the wire schema.
    public enum Function: String, Sendable, CaseIterable {
        case count, sum, min, max, avg
    }

    public var function: Function
    /// The aggregated attribute (dotted path); required for all but `count`.
    public var field: String?

    public init(_ function: Function, field: String? = nil) {
        self.function = function
        self.field = field
    }

    /// Decodes `{func, field?}`.
    public init(from dataValue: DataValue) throws(QueryError) {
        try self.init(from: dataValue, path: "aggregations[0]")
    }

    init(from dataValue: DataValue, path: String) throws(QueryError) {
        let object = try QueryDecoding.object(dataValue, at: path)
        guard let spelled = QueryDecoding.present(object, "func") else {
            throw .missingField(field: "\(path).func")
        }
        let name = try QueryDecoding.string(spelled, at: "\(path).func")
        guard let function = Function(rawValue: name) else {
            throw .unknownOperator(field: "\(path).func", name: name)
        }
        let field = try QueryDecoding.optionalString(object, "field", at: path)
        if function != .count, field == nil {
            throw .missingField(field: "\(path).field")
        }
        self.init(function, field: field)
    }

    public var dataValue: DataValue {
        var object: DataObject = ["func": .string(function.rawValue)]
        if let field { object.append("field", .string(field)) }
        return .object(object)
    }

    /// The key this aggregation's result has in a group row: `__<func>_<field>`, or
    /// `__count` for a `count` without a field.
    public var resultKey: String {
        guard let field else { return "__\(function.rawValue)" }
        return "__\(function.rawValue)_\(field)"
    }
}
