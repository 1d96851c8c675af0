/// Why a map schema was refused when put.
public enum MapSchemaError: Error, Sendable, Equatable {
    /// The text is not JSON (RFC 8259, UTF-8, no duplicate member names). `offset` is the
    /// byte where reading stopped.
    case notJSON(message: String, offset: Int)
    /// JSON, but not a valid schema of the supported subset: every problem found, in
    /// document order, at most `MapSchema.maxProblems`.
    case invalidSchema([SchemaProblem])

    /// The problems as the control plane reports them (`errors[]` of a 400); a text that is
    /// not JSON is one problem at the root.
    public var problems: [SchemaProblem] {
        switch self {
        case .notJSON(let message, let offset):
            [SchemaProblem(pointer: "", message: "not valid JSON: \(message) at byte \(offset)")]
        case .invalidSchema(let problems): problems
        }
    }
}

/// One thing wrong with a schema. `pointer` is the RFC 6901 JSON Pointer of the offending
/// member relative to the schema root (`""` is the root); the control plane prefixes `/schema`.
public struct SchemaProblem: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var pointer: String
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }

    public var description: String { pointer.isEmpty ? message : "\(pointer): \(message)" }
}

/// One way a value breaks a schema. `pointer` is the RFC 6901 JSON Pointer of the value
/// inside the written record (`""` is the record itself, `/items/2/name` a nested member).
public struct SchemaViolation: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var pointer: String
    public var message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }

    /// `"/age: 17 is less than the minimum 18"`; the root has no pointer prefix.
    public var description: String { pointer.isEmpty ? message : "\(pointer): \(message)" }
}

/// RFC 6901 JSON Pointers.
public enum JSONPointer {
    /// One reference token: `~` becomes `~0` and `/` becomes `~1` (in that order, so `~1`
    /// in a name stays distinguishable from `/`).
    public static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var escaped = ""
        for scalar in token.unicodeScalars {
            switch scalar {
            case "~": escaped += "~0"
            case "/": escaped += "~1"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// `base` followed by one token.
    public static func appending(_ base: String, _ token: String) -> String { base + "/" + escape(token) }
}
