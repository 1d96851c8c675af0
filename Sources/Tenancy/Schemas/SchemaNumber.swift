import TopGunCore

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

    /// A number as the schema engine sees it: `2.0` is the integer 2.
    init(_ number: JSONNumber) {
        switch number {
        case .int(let value): self = .int(value)
        case .uint(let value): self = .init(exactly: value)
        case .double(let value): self = .init(value)
        }
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
