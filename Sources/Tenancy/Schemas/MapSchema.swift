import TopGunCore

/// A map's schema: the JSON Schema subset of the control plane contract (openapi.yaml,
/// "Map schemas"), parsed, checked and compiled once, then applied to every written value.
///
/// The control plane parses what a tenant puts (`parse`) and stores `canonicalJSON`; the
/// data plane parses the stored text again and calls `validate` on each live write
/// (tombstones are never checked: that is the caller's rule).
public struct MapSchema: Sendable, Equatable, CustomStringConvertible {
    /// Largest schema as JSON (its canonical text).
    public static let maxBytes = 65_536
    /// Schema levels: the root is level 1, each `properties` member, `items` or
    /// `additionalProperties` schema one more.
    public static let maxDepth = 32
    /// Problems reported for one put.
    public static let maxProblems = 100
    /// Largest `minLength`/`maxLength`.
    public static let maxStringLength: Int64 = 2_097_152
    /// Input refused before reading: white space may pad the text, but not without limit.
    public static let maxInputBytes = 1_048_576

    /// Compact JSON, members sorted by key (code point order), numbers in their shortest
    /// form (`1.0` is `1`): equal schemas give equal text, so comparing texts tells an
    /// unchanged put. `parse(json: canonicalJSON)` gives the same schema back.
    public let canonicalJSON: String

    private let root: SchemaNode

    private init(canonicalJSON: String, root: SchemaNode) {
        self.canonicalJSON = canonicalJSON
        self.root = root
    }

    public static func parse(json: String) throws(MapSchemaError) -> MapSchema {
        try parse(json: Array(json.utf8))
    }

    /// Parses and checks a schema. Throws `.notJSON` when the text is not strict JSON, and
    /// `.invalidSchema` with every problem found (at most `maxProblems`, in document order)
    /// when it is JSON but not a valid schema.
    public static func parse(json bytes: [UInt8]) throws(MapSchemaError) -> MapSchema {
        guard bytes.count <= maxInputBytes else {
            throw .invalidSchema([SchemaProblem(pointer: "", message: "the schema text is \(bytes.count) bytes; at most \(maxBytes) as compact JSON")])
        }
        let json: JSONValue
        do {
            json = try JSONReader(limits: JSONReader.Limits(maxBytes: maxInputBytes)).read(bytes)
        } catch {
            switch error.kind {
            case .syntax(let message): throw .notJSON(message: message, offset: error.offset)
            case .invalidUTF8: throw .notJSON(message: "invalid UTF-8 in a string", offset: error.offset)
            case .repeatedMember(let name): throw .notJSON(message: "duplicate member name \"\(name)\"", offset: error.offset)
            case .tooDeep: throw .invalidSchema([SchemaProblem(pointer: "", message: "the schema nests deeper than \(maxDepth) levels")])
            case .tooLarge: throw .invalidSchema([SchemaProblem(pointer: "", message: "the schema text is \(bytes.count) bytes; at most \(maxBytes) as compact JSON")])
            }
        }
        return try compile(json)
    }

    /// Checks a schema already read as JSON (a member of a request body, read once with it).
    /// Throws `.invalidSchema` with every problem found when it is not a valid schema.
    public static func compile(_ json: JSONValue) throws(MapSchemaError) -> MapSchema {
        let canonical = json.canonicalText
        var compiler = SchemaCompiler()
        if canonical.utf8.count > maxBytes {
            compiler.report("", "the schema is \(canonical.utf8.count) bytes as JSON; at most \(maxBytes)")
        }
        let root = compiler.compile(json, at: "", depth: 1)
        guard compiler.problems.isEmpty, let root else {
            throw .invalidSchema(compiler.problems)
        }
        return MapSchema(canonicalJSON: canonical, root: root)
    }

    /// The first way `value` breaks the schema, or nil when it conforms. The value is
    /// checked as its JSON equivalent: a whole double is an integer, binary matches no type.
    public func validate(_ value: DataValue) -> SchemaViolation? {
        var sink = ViolationSink(limit: 1)
        var path: [PathStep] = []
        root.check(value, path: &path, sink: &sink)
        return sink.violations.first
    }

    /// Up to `limit` violations, in the value's order (for logs in `warn` mode).
    public func violations(of value: DataValue, limit: Int = 10) -> [SchemaViolation] {
        var sink = ViolationSink(limit: max(1, limit))
        var path: [PathStep] = []
        root.check(value, path: &path, sink: &sink)
        return sink.violations
    }

    public static func == (lhs: MapSchema, rhs: MapSchema) -> Bool { lhs.canonicalJSON == rhs.canonicalJSON }

    public var description: String { canonicalJSON }
}
