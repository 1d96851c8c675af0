extension Query {
    /// Attribute names that identify the record key, for partition pruning.
    public static let keyAttributes: Set<String> = ["_key", "key", "id", "_id"]

    /// The exact record keys this query can match, when the filter pins them down, so that
    /// only their partitions' owners need to be asked; nil when it does not (no pruning).
    ///
    /// From `predicate` if present: `eq` (or `in`) on `_key`, `key`, `id` or `_id` with a
    /// string or number, and `and` of such (the union of the children that give keys, as the
    /// Rust server does); `or`, `not` and anything else give nil. Otherwise from `where`: those
    /// attributes with a string/number, an array of them, `{$eq: v}` or `{$in: [...]}`.
    /// Numbers become their decimal text. Keys are de-duplicated, first occurrence first.
    public var exactKeys: [String]? {
        var keys: [String]?
        if let predicate {
            keys = Self.exactKeys(in: predicate)
        } else if let clause = self.where {
            for entry in clause.fields where Self.keyAttributes.contains(entry.key) {
                if let found = Self.exactKeys(inWhereValue: entry.value) { keys = (keys ?? []) + found }
            }
        }
        guard let keys else { return nil }
        var seen = Set<String>()
        return keys.filter { seen.insert($0).inserted }
    }

    private static func exactKeys(in node: PredicateNode) -> [String]? {
        switch node.op {
        case .and:
            var union: [String]?
            for child in node.children ?? [] {
                if let keys = exactKeys(in: child) { union = (union ?? []) + keys }
            }
            return union
        case .eq:
            guard let attribute = node.attribute, keyAttributes.contains(attribute), node.valueRef == nil,
                let value = node.value
            else { return nil }
            return keyText(value).map { [$0] }
        case .in:
            guard let attribute = node.attribute, keyAttributes.contains(attribute), node.valueRef == nil,
                case .array(let values)? = node.value
            else { return nil }
            return keyTexts(values)
        default:
            return nil
        }
    }

    private static func exactKeys(inWhereValue value: DataValue) -> [String]? {
        switch value {
        case .array(let values):
            return keyTexts(values)
        case .object(let operators):
            guard WhereClause.isOperatorObject(operators) else { return nil }
            if let equal = operators["$eq"] { return keyText(equal).map { [$0] } }
            if case .array(let values)? = operators["$in"] { return keyTexts(values) }
            return nil
        default:
            return keyText(value).map { [$0] }
        }
    }

    /// All elements as keys, or nil when any element cannot be a key.
    private static func keyTexts(_ values: [DataValue]) -> [String]? {
        var keys: [String] = []
        for value in values {
            guard let key = keyText(value) else { return nil }
            keys.append(key)
        }
        return keys
    }

    private static func keyText(_ value: DataValue) -> String? {
        switch value {
        case .string(let s): return s
        case .int, .uint, .double:
            if case .double(let d) = value, !d.isFinite { return nil }
            return DataValueText.render(value)
        default: return nil
        }
    }
}
