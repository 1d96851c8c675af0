/// One node of a query predicate tree, as the client's `Predicates` builder makes it.
///
/// Leaves test an `attribute` (a dotted path into the record value) against `value`;
/// `and`, `or` and `not` combine `children`. The full-text keys (`query`, `matchOptions`,
/// `slop`, `prefix`, `maxExpansions`) and the policy key `valueRef` are kept so that a
/// decoded node re-encodes without loss. See ``matches(key:value:auth:)`` for semantics.
public struct PredicateNode: Sendable {
    /// Deepest nesting accepted on decode; a guard against stack exhaustion from hostile input.
    public static let maximumDepth = 64

    public var op: PredicateOperator
    public var attribute: String?
    /// The operand. A wire `null` is kept as `.null` (the client may send `eq(x, null)`).
    public var value: DataValue?
    public var children: [PredicateNode]?
    /// Takes the operand from the evaluation context instead of `value`:
    /// `"data.<path>"` (the record itself) or `"auth.<path>"` (the principal).
    public var valueRef: String?
    /// Full-text query text (`match`, `matchPhrase`, `multiMatch`).
    public var query: String?
    /// Full-text options such as `{operator: "and"|"or", minScore, boost, fuzziness}`.
    public var matchOptions: DataObject?
    /// Phrase slop for `matchPhrase` (kept, not used by the token containment).
    public var slop: Int?
    /// Prefix for `matchPrefix`.
    public var prefix: String?
    /// Maximum prefix expansions for `matchPrefix` (kept, not used).
    public var maxExpansions: Int?

    /// Compiled `regex` pattern, made once at construction so that evaluating the node over
    /// many records does not recompile it. Checked against `value` before use, so a later
    /// mutation of `value` or `op` is still honoured.
    let compiledRegex: CompiledRegex?

    public init(
        op: PredicateOperator,
        attribute: String? = nil,
        value: DataValue? = nil,
        children: [PredicateNode]? = nil,
        valueRef: String? = nil,
        query: String? = nil,
        matchOptions: DataObject? = nil,
        slop: Int? = nil,
        prefix: String? = nil,
        maxExpansions: Int? = nil
    ) {
        self.op = op
        self.attribute = attribute
        self.value = value
        self.children = children
        self.valueRef = valueRef
        self.query = query
        self.matchOptions = matchOptions
        self.slop = slop
        self.prefix = prefix
        self.maxExpansions = maxExpansions
        if op == .regex, case .string(let pattern)? = value {
            self.compiledRegex = CompiledRegex(pattern: pattern)
        } else {
            self.compiledRegex = nil
        }
    }

    /// Decodes a node from its wire form. Unknown keys are ignored; a `null` under an optional
    /// key other than `value` counts as absent.
    public init(from dataValue: DataValue) throws(QueryError) {
        try self.init(from: dataValue, path: "predicate", depth: 0)
    }

    init(from dataValue: DataValue, path: String, depth: Int) throws(QueryError) {
        guard depth < Self.maximumDepth else {
            throw .invalidValue(field: path, reason: "nested deeper than \(Self.maximumDepth) levels")
        }
        let object = try QueryDecoding.object(dataValue, at: path)
        guard let opValue = QueryDecoding.present(object, "op") else {
            throw .missingField(field: QueryDecoding.join(path, "op"))
        }
        let opName = try QueryDecoding.string(opValue, at: QueryDecoding.join(path, "op"))
        guard let op = PredicateOperator(rawValue: opName) else {
            throw .unknownOperator(field: QueryDecoding.join(path, "op"), name: opName)
        }
        var children: [PredicateNode]?
        if let childrenValue = QueryDecoding.present(object, "children") {
            let childrenPath = QueryDecoding.join(path, "children")
            guard case .array(let elements) = childrenValue else {
                throw .wrongType(field: childrenPath, expected: "array of predicates")
            }
            var decoded: [PredicateNode] = []
            decoded.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                decoded.append(try PredicateNode(from: element, path: "\(childrenPath)[\(index)]", depth: depth + 1))
            }
            children = decoded
        }
        var matchOptions: DataObject?
        if let options = QueryDecoding.present(object, "matchOptions") {
            matchOptions = try QueryDecoding.object(options, at: QueryDecoding.join(path, "matchOptions"))
        }
        self.init(
            op: op,
            attribute: try QueryDecoding.optionalString(object, "attribute", at: path),
            value: object["value"],
            children: children,
            valueRef: try QueryDecoding.optionalString(object, "valueRef", at: path),
            query: try QueryDecoding.optionalString(object, "query", at: path),
            matchOptions: matchOptions,
            slop: try QueryDecoding.optionalWholeNumber(object, "slop", at: path),
            prefix: try QueryDecoding.optionalString(object, "prefix", at: path),
            maxExpansions: try QueryDecoding.optionalWholeNumber(object, "maxExpansions", at: path)
        )
    }

    /// The wire form: `op` first, then only the keys that are present.
    public var dataValue: DataValue {
        var object = DataObject()
        object.append("op", .string(op.rawValue))
        if let attribute { object.append("attribute", .string(attribute)) }
        if let value { object.append("value", value) }
        if let children { object.append("children", .array(children.map(\.dataValue))) }
        if let valueRef { object.append("valueRef", .string(valueRef)) }
        if let query { object.append("query", .string(query)) }
        if let matchOptions { object.append("matchOptions", .object(matchOptions)) }
        if let slop { object.append("slop", .int(Int64(slop))) }
        if let prefix { object.append("prefix", .string(prefix)) }
        if let maxExpansions { object.append("maxExpansions", .int(Int64(maxExpansions))) }
        return .object(object)
    }
}

extension PredicateNode: Equatable {
    /// Equal when every wire key is equal; the compiled-regex cache is ignored.
    public static func == (lhs: PredicateNode, rhs: PredicateNode) -> Bool {
        lhs.op == rhs.op && lhs.attribute == rhs.attribute && lhs.value == rhs.value
            && lhs.children == rhs.children && lhs.valueRef == rhs.valueRef && lhs.query == rhs.query
            && lhs.matchOptions == rhs.matchOptions && lhs.slop == rhs.slop && lhs.prefix == rhs.prefix
            && lhs.maxExpansions == rhs.maxExpansions
    }
}

// MARK: - Convenience builders (mirror the client's `Predicates`)

extension PredicateNode {
    /// A leaf testing `attribute` with `op` against `value`.
    public static func leaf(_ op: PredicateOperator, _ attribute: String, _ value: DataValue? = nil) -> PredicateNode {
        PredicateNode(op: op, attribute: attribute, value: value)
    }

    public static func and(_ children: [PredicateNode]) -> PredicateNode {
        PredicateNode(op: .and, children: children)
    }

    public static func or(_ children: [PredicateNode]) -> PredicateNode {
        PredicateNode(op: .or, children: children)
    }

    public static func not(_ child: PredicateNode) -> PredicateNode {
        PredicateNode(op: .not, children: [child])
    }
}
