/// A JSON value as the schema engine reads it: members keep their order (so problems are
/// reported in the order the tenant wrote them) and numbers keep integers exact.
enum SchemaJSON: Sendable {
    case null
    case bool(Bool)
    case number(SchemaNumber)
    case string(String)
    case array([SchemaJSON])
    case object([Member])

    struct Member: Sendable {
        var key: String
        var value: SchemaJSON
    }

    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A JSON number. Integers that fit 64 bits stay exact (`9007199254740993` must not become a
/// double); a fraction-free literal such as `2.0` or `1e3` is an integer, as in JSON Schema.
enum SchemaNumber: Sendable, Equatable {
    case int(Int64)
    /// Only above `Int64.max`.
    case uint(UInt64)
    /// Finite, and not a whole number in 64-bit range.
    case double(Double)

    /// Normalizes a finite double: whole values in range become `.int`, so `-0`, `2.0` and `2`
    /// are one number.
    init(_ value: Double) {
        if value.rounded(.towardZero) == value {
            if let exact = Int64(exactly: value) { self = .int(exact); return }
            if let exact = UInt64(exactly: value) { self = .uint(exact); return }
        }
        self = .double(value)
    }

    /// `.uint` is kept for values above `Int64.max` only.
    init(exactly value: UInt64) {
        self = value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
    }

    var isInteger: Bool {
        switch self {
        case .int, .uint: true
        case .double(let d): d.rounded(.towardZero) == d
        }
    }

    var asDouble: Double {
        switch self {
        case .int(let i): Double(i)
        case .uint(let u): Double(u)
        case .double(let d): d
        }
    }

    /// Shortest text that reads back as the same number (valid JSON).
    var text: String {
        switch self {
        case .int(let i): String(i)
        case .uint(let u): String(u)
        case .double(let d): d.description
        }
    }
}

// MARK: - Exact numeric comparison

extension SchemaNumber {
    /// Compares without rounding: an `Int64` is not converted to `Double` when that would
    /// lose precision. NaN never reaches here (JSON has none; values check for it first).
    static func compare(_ lhs: SchemaNumber, _ rhs: SchemaNumber) -> Int {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.uint(let a), .uint(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.int, .uint): return -1
        case (.uint, .int): return 1
        case (.double(let a), .double(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.int(let a), .double(let b)): return compareInt(a, b)
        case (.double(let a), .int(let b)): return -compareInt(b, a)
        case (.uint(let a), .double(let b)): return compareUInt(a, b)
        case (.double(let a), .uint(let b)): return -compareUInt(b, a)
        }
    }

    private static func compareInt(_ a: Int64, _ b: Double) -> Int {
        if b >= 9_223_372_036_854_775_808.0 { return -1 }
        if b < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = b.rounded(.down)  // in Int64 range now
        let wholeInt = Int64(whole)
        if a < wholeInt { return -1 }
        if a > wholeInt { return 1 }
        return whole == b ? 0 : -1  // a == floor(b) and b has a fraction: a < b
    }

    private static func compareUInt(_ a: UInt64, _ b: Double) -> Int {
        if b >= 18_446_744_073_709_551_616.0 { return -1 }
        if b < 0 { return 1 }
        let whole = b.rounded(.down)
        let wholeUInt = UInt64(whole)
        if a < wholeUInt { return -1 }
        if a > wholeUInt { return 1 }
        return whole == b ? 0 : -1
    }
}

// MARK: - Canonical text

extension SchemaJSON {
    /// Compact JSON with object members sorted by key in code point order: equal schemas
    /// give equal text whatever their white space, member order or number spelling.
    var canonicalText: String {
        var output = ""
        writeCanonical(to: &output)
        return output
    }

    func writeCanonical(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let b): output += b ? "true" : "false"
        case .number(let n): output += n.text
        case .string(let s): Self.writeQuoted(s, to: &output)
        case .array(let values):
            output += "["
            for (index, value) in values.enumerated() {
                if index > 0 { output += "," }
                value.writeCanonical(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            // Byte order of UTF-8 is code point order; String's `<` would compare by
            // canonical equivalence and could call two distinct keys equal.
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { output += "," }
                Self.writeQuoted(member.key, to: &output)
                output += ":"
                member.value.writeCanonical(to: &output)
            }
            output += "}"
        }
    }

    static func writeQuoted(_ string: String, to output: inout String) {
        output += "\""
        let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case _ where scalar.value < 0x20:
                output += "\\u00"
                output.append(hex[Int(scalar.value >> 4)])
                output.append(hex[Int(scalar.value & 0xF)])
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
