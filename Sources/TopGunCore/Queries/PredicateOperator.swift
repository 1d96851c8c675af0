/// The `op` of a ``PredicateNode``, spelled as on the wire.
///
/// The union of what the TypeScript client's `Predicates` builder emits and what the Rust
/// server understands, so that no client-built predicate is rejected.
public enum PredicateOperator: String, Sendable, CaseIterable {
    case eq, neq, gt, gte, lt, lte
    case like, regex
    case `in`, between
    case isNull, isNotNull
    case contains, containsAll, containsAny
    case startsWith, endsWith
    case and, or, not
    /// Full-text operators. Real full-text search is not built here: these evaluate as a
    /// simple case-insensitive token containment (see ``PredicateNode``).
    case match, matchPhrase, matchPrefix, multiMatch

    /// `and`, `or` and `not` combine children instead of testing an attribute.
    public var isCombinator: Bool {
        switch self {
        case .and, .or, .not: return true
        default: return false
        }
    }
}
