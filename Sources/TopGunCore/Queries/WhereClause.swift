/// The legacy `where` filter: every entry must hold (AND).
///
/// An entry's value is either a plain value, tested for equality, or an operator object: a
/// non-empty object whose keys all start with `$` (`$eq, $ne, $gt, $gte, $lt, $lte, $in`;
/// several operators in one object must all hold). Any other object is a plain value.
///
/// A field missing from the record fails its entry whatever the operator (so `$ne` does not
/// match a missing field, as in the predicate engine); a present field, null included, is
/// compared by value. `$gt/$gte/$lt/$lte` order numbers with numbers and strings with
/// strings only. `$in` holds when the field equals an element of the list, or when an array
/// field shares an element with it.
enum WhereClause {
    static let operatorNames: Set<String> = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"]

    static func isOperatorObject(_ object: DataObject) -> Bool {
        !object.isEmpty && object.fields.allSatisfy { $0.key.hasPrefix("$") }
    }

    static func validate(_ clause: DataObject, at path: String) throws(QueryError) {
        for entry in clause.fields {
            guard case .object(let operators) = entry.value, isOperatorObject(operators) else { continue }
            for op in operators.fields {
                let opPath = "\(path).\(entry.key).\(op.key)"
                guard operatorNames.contains(op.key) else { throw .unknownOperator(field: opPath, name: op.key) }
                if op.key == "$in", op.value.arrayValue == nil {
                    throw .wrongType(field: opPath, expected: "array")
                }
            }
        }
    }

    static func matches(_ clause: DataObject, key: String?, value: DataValue) -> Bool {
        clause.fields.allSatisfy { entry in
            guard let actual = RecordAttribute.resolve(entry.key, key: key, value: value) else { return false }
            guard case .object(let operators) = entry.value, isOperatorObject(operators) else {
                return actual == entry.value
            }
            return operators.fields.allSatisfy { holds($0.key, actual: actual, operand: $0.value) }
        }
    }

    private static func holds(_ op: String, actual: DataValue, operand: DataValue) -> Bool {
        switch op {
        case "$eq": return actual == operand
        case "$ne": return actual != operand
        case "$gt": return ValueOrdering.compare(actual, operand) == .greater
        case "$gte":
            let order = ValueOrdering.compare(actual, operand)
            return order == .greater || order == .equal
        case "$lt": return ValueOrdering.compare(actual, operand) == .less
        case "$lte":
            let order = ValueOrdering.compare(actual, operand)
            return order == .less || order == .equal
        case "$in":
            guard case .array(let allowed) = operand else { return false }
            if allowed.contains(actual) { return true }
            if case .array(let elements) = actual { return elements.contains(where: allowed.contains) }
            return false
        default:
            // Unknown operators are rejected on decode; one built in code matches nothing.
            return false
        }
    }
}
