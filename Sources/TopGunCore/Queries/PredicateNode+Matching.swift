extension PredicateNode {
    /// Whether the record `(key, value)` satisfies this predicate.
    ///
    /// Semantics (the Rust server's, with the client's extra operators):
    /// * `and` of nothing is true, `or` of nothing is false, `not` of nothing is true; `not`
    ///   negates its first child (as both reference implementations do).
    /// * A leaf whose attribute is missing or null is false, except `isNull` (true) and
    ///   `isNotNull` (false): SQL's three-valued logic, so `neq` is false on a missing field.
    /// * `eq`/`neq` use `DataValue` equality (1 == 1.0). `gt/gte/lt/lte/between` compare
    ///   numbers with numbers and strings with strings only; other pairs are false.
    /// * `like`: anchored, case-insensitive SQL pattern. `regex`: unanchored search; an
    ///   invalid pattern matches nothing.
    /// * `in`: the field equals an element of the `value` array, or an array field contains
    ///   the scalar `value`. `between`: `value` is `[lo, hi]`, inclusive; with no `value`, the
    ///   children must all hold.
    /// * `contains`: case-insensitive substring on strings (as the client does), element
    ///   equality on arrays. `containsAll`/`containsAny`: elements of an array field (a scalar
    ///   `value` counts as one element), or case-insensitive substrings of a string field.
    ///   `startsWith`/`endsWith`: case-sensitive, strings only.
    /// * Full-text operators are NOT real full-text search: `match` tests the words of the
    ///   query against the words of the field (any word, or all with
    ///   `matchOptions.operator == "and"`), `matchPhrase` the words in a row, `matchPrefix` any
    ///   word starting with `prefix`, `multiMatch` `match` over the fields listed in `value`.
    ///
    /// An attribute is a dotted path (`a.b.c`); `_key` and `key` mean the record key when the
    /// value has no such field. `valueRef` (`"data.<path>"` or `"auth.<path>"`) takes the
    /// operand from the record or from `auth`; when it does not resolve, the leaf is false.
    public func matches(key: String, value: DataValue, auth: DataValue? = nil) -> Bool {
        evaluate(key: key, value: value, auth: auth)
    }

    func evaluate(key: String?, value: DataValue, auth: DataValue?) -> Bool {
        switch op {
        case .and:
            return (children ?? []).allSatisfy { $0.evaluate(key: key, value: value, auth: auth) }
        case .or:
            return (children ?? []).contains { $0.evaluate(key: key, value: value, auth: auth) }
        case .not:
            guard let first = children?.first else { return true }
            return !first.evaluate(key: key, value: value, auth: auth)
        case .multiMatch:
            return evaluateMultiMatch(key: key, value: value)
        case .between where self.value == nil && valueRef == nil:
            // Children form: `between` spelled as its bounds, e.g. [gte lo, lte hi].
            guard let children, !children.isEmpty else { return false }
            return children.allSatisfy { $0.evaluate(key: key, value: value, auth: auth) }
        default:
            break
        }
        guard let attribute else { return false }
        let actual = RecordAttribute.resolve(attribute, key: key, value: value)
        switch op {
        case .isNull: return actual?.isNull ?? true
        case .isNotNull: return !(actual?.isNull ?? true)
        default: break
        }
        guard let actual, !actual.isNull else { return false }

        if op == .match || op == .matchPhrase || op == .matchPrefix {
            return evaluateFullText(actual)
        }
        guard let operand = resolveOperand(key: key, value: value, auth: auth) else { return false }
        return evaluateComparison(actual: actual, operand: operand)
    }

    private func resolveOperand(key: String?, value: DataValue, auth: DataValue?) -> DataValue? {
        guard let valueRef else { return self.value }
        let (namespace, rest) = splitFirstDot(valueRef)
        let root: DataValue
        switch namespace {
        case "data": root = value
        case "auth":
            guard let auth else { return nil }
            root = auth
        default: return nil
        }
        guard let rest, !rest.isEmpty else { return root }
        return RecordAttribute.resolve(rest, key: namespace == "data" ? key : nil, value: root)
    }

    private func splitFirstDot(_ text: String) -> (String, String?) {
        guard let dot = text.firstIndex(of: ".") else { return (text, nil) }
        return (String(text[..<dot]), String(text[text.index(after: dot)...]))
    }

    private func evaluateComparison(actual: DataValue, operand: DataValue) -> Bool {
        switch op {
        case .eq: return actual == operand
        case .neq: return actual != operand
        case .gt: return ValueOrdering.compare(actual, operand) == .greater
        case .gte:
            let order = ValueOrdering.compare(actual, operand)
            return order == .greater || order == .equal
        case .lt: return ValueOrdering.compare(actual, operand) == .less
        case .lte:
            let order = ValueOrdering.compare(actual, operand)
            return order == .less || order == .equal
        case .like:
            guard case .string(let text) = actual, case .string(let pattern) = operand else { return false }
            return LikePattern(pattern).matches(text)
        case .regex:
            guard case .string(let text) = actual, case .string(let pattern) = operand else { return false }
            if let compiledRegex, compiledRegex.pattern == pattern { return compiledRegex.matches(text) }
            return CompiledRegex(pattern: pattern).matches(text)
        case .in:
            if case .array(let allowed) = operand { return allowed.contains(actual) }
            if case .array(let elements) = actual { return elements.contains(operand) }
            return false
        case .between:
            guard case .array(let range) = operand, range.count == 2 else { return false }
            let low = ValueOrdering.compare(actual, range[0])
            let high = ValueOrdering.compare(actual, range[1])
            return (low == .greater || low == .equal) && (high == .less || high == .equal)
        case .contains:
            switch (actual, operand) {
            case (.string(let text), .string(let needle)):
                return containsIgnoringCase(text, needle)
            case (.array(let elements), _):
                return elements.contains(operand)
            default:
                return false
            }
        case .containsAll, .containsAny:
            let wanted: [DataValue]
            if case .array(let elements) = operand { wanted = elements } else { wanted = [operand] }
            let test: (DataValue) -> Bool
            switch actual {
            case .array(let elements):
                test = { elements.contains($0) }
            case .string(let text):
                test = { item in
                    guard case .string(let needle) = item else { return false }
                    return containsIgnoringCase(text, needle)
                }
            default:
                return false
            }
            return op == .containsAll ? wanted.allSatisfy(test) : wanted.contains(where: test)
        case .startsWith:
            guard case .string(let text) = actual, case .string(let prefix) = operand else { return false }
            return text.utf8.starts(with: prefix.utf8)
        case .endsWith:
            guard case .string(let text) = actual, case .string(let suffix) = operand else { return false }
            return text.utf8.reversed().starts(with: suffix.utf8.reversed())
        default:
            return false
        }
    }

    private func containsIgnoringCase(_ text: String, _ needle: String) -> Bool {
        let needle = needle.lowercased()
        if needle.isEmpty { return true }
        return text.lowercased().contains(needle)
    }

    // MARK: Full-text stand-ins

    private var fullTextQuery: String? {
        if let query { return query }
        if case .string(let text)? = value { return text }
        return nil
    }

    private func evaluateFullText(_ actual: DataValue) -> Bool {
        guard let fieldWords = TextTokens.words(of: actual) else { return false }
        switch op {
        case .matchPrefix:
            guard let prefix = (prefix ?? fullTextQuery)?.lowercased(), !prefix.isEmpty else { return false }
            return fieldWords.contains { $0.hasPrefix(prefix) }
        case .matchPhrase:
            guard let text = fullTextQuery else { return false }
            let phrase = TextTokens.words(text)
            guard !phrase.isEmpty, phrase.count <= fieldWords.count else { return false }
            return (0...(fieldWords.count - phrase.count)).contains { start in
                fieldWords[start..<(start + phrase.count)].elementsEqual(phrase)
            }
        default:
            guard let text = fullTextQuery else { return false }
            let queryWords = TextTokens.words(text)
            guard !queryWords.isEmpty else { return false }
            let present = Set(fieldWords)
            if matchOptions?["operator"]?.stringValue == "and" {
                return queryWords.allSatisfy(present.contains)
            }
            return queryWords.contains(where: present.contains)
        }
    }

    private func evaluateMultiMatch(key: String?, value: DataValue) -> Bool {
        var fields: [String] = []
        if case .array(let names)? = self.value {
            for case .string(let name) in names { fields.append(name) }
        }
        if let attribute { fields.append(attribute) }
        return fields.contains { field in
            PredicateNode(op: .match, attribute: field, query: fullTextQuery, matchOptions: matchOptions)
                .evaluate(key: key, value: value, auth: nil)
        }
    }
}
