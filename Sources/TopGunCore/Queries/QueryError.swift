/// Why a query (or a part of it) arriving from a client could not be decoded.
///
/// Every case carries `field`, the dotted path of the offending part inside the query
/// (`sort[0].direction`, `predicate.children[1].op`, `limit`), so the error sent back to the
/// client says where to look.
public enum QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The value at `field` has the wrong type; `expected` names the type wanted.
    case wrongType(field: String, expected: String)
    /// The value at `field` has the right type but an unacceptable value.
    case invalidValue(field: String, reason: String)
    /// An operator name (predicate `op`, `where` `$op`, aggregation `func`) that is not known.
    case unknownOperator(field: String, name: String)
    /// A required key is absent.
    case missingField(field: String)

    /// Dotted path of the offending part of the query.
    public var field: String {
        switch self {
        case .wrongType(let field, _), .invalidValue(let field, _), .unknownOperator(let field, _),
            .missingField(let field):
            return field
        }
    }

    /// A human-readable explanation, suitable for an error reply.
    public var message: String {
        switch self {
        case .wrongType(let field, let expected): return "\(field): expected \(expected)"
        case .invalidValue(let field, let reason): return "\(field): \(reason)"
        case .unknownOperator(let field, let name): return "\(field): unknown operator '\(name)'"
        case .missingField(let field): return "\(field): required"
        }
    }

    public var description: String { message }
}
