extension Query {
    /// Whether the record `(key, value)` is in the query's result: `predicate` if present
    /// (see ``PredicateNode/matches(key:value:auth:)``), else `where` (see ``Query/where``),
    /// else everything. A `null` value is a tombstone and never matches.
    public func matches(key: String, value: DataValue, auth: DataValue? = nil) -> Bool {
        evaluate(key: key, value: value, auth: auth)
    }

    /// Like ``matches(key:value:auth:)`` for a value whose key is unknown: `_key`/`key`
    /// then resolve only from the value's own fields.
    public func matches(_ value: DataValue) -> Bool {
        evaluate(key: nil, value: value, auth: nil)
    }

    func evaluate(key: String?, value: DataValue, auth: DataValue?) -> Bool {
        if value.isNull { return false }
        if let predicate { return predicate.evaluate(key: key, value: value, auth: auth) }
        if let `where` { return WhereClause.matches(`where`, key: key, value: value) }
        return true
    }
}
