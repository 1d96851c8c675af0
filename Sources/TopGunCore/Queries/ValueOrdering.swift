/// Three-way comparison result (the standard library has none without Foundation).
enum ValueOrder: Int8, Sendable {
    case less = -1, equal = 0, greater = 1

    var reversed: ValueOrder {
        switch self {
        case .less: return .greater
        case .equal: return .equal
        case .greater: return .less
        }
    }
}

/// The orderings used by queries.
///
/// * ``compare(_:_:)`` is the partial order of the predicate operators `gt/gte/lt/lte/between`:
///   numbers with numbers (exactly, across int/uint/double), strings with strings (by UTF-8
///   bytes, i.e. Unicode scalar order); anything else, and NaN, is incomparable.
/// * ``sortCompare(_:_:)`` is a total order for sorting: by kind (bool < number < string <
///   binary < array < object), then within the kind; an absent or null value is greater than
///   every value, so it sorts last ascending and first descending.
enum ValueOrdering {
    static func compare(_ lhs: DataValue, _ rhs: DataValue) -> ValueOrder? {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): return compareStrings(a, b)
        default:
            guard lhs.isNumber, rhs.isNumber else { return nil }
            return compareNumbers(lhs, rhs)
        }
    }

    /// Compares by UTF-8 bytes, the Rust server's `str` order (and Unicode scalar order).
    static func compareStrings(_ lhs: String, _ rhs: String) -> ValueOrder {
        var a = lhs.utf8.makeIterator()
        var b = rhs.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return .equal
            case (nil, _): return .less
            case (_, nil): return .greater
            case (let x?, let y?):
                if x != y { return x < y ? .less : .greater }
            }
        }
    }

    /// Exact numeric comparison (no rounding of large integers through Double); nil for NaN
    /// or non-numbers.
    static func compareNumbers(_ lhs: DataValue, _ rhs: DataValue) -> ValueOrder? {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return order(a, b)
        case (.uint(let a), .uint(let b)): return order(a, b)
        case (.int(let a), .uint(let b)): return a < 0 ? .less : order(UInt64(a), b)
        case (.uint(let a), .int(let b)): return b < 0 ? .greater : order(a, UInt64(b))
        case (.double(let a), .double(let b)):
            if a.isNaN || b.isNaN { return nil }
            return a < b ? .less : (a > b ? .greater : .equal)
        case (.int(let a), .double(let b)): return compare(a, b)
        case (.double(let a), .int(let b)): return compare(b, a)?.reversed
        case (.uint(let a), .double(let b)): return compare(a, b)
        case (.double(let a), .uint(let b)): return compare(b, a)?.reversed
        default: return nil
        }
    }

    static func sortCompare(_ lhs: DataValue?, _ rhs: DataValue?) -> ValueOrder {
        let a = lhs ?? .null
        let b = rhs ?? .null
        let rankA = rank(a)
        let rankB = rank(b)
        if rankA != rankB { return rankA < rankB ? .less : .greater }
        switch (a, b) {
        case (.null, .null): return .equal
        case (.bool(let x), .bool(let y)): return x == y ? .equal : (x ? .greater : .less)
        case (.string(let x), .string(let y)): return compareStrings(x, y)
        case (.binary(let x), .binary(let y)): return lexicographic(x, y)
        case (.array(let x), .array(let y)):
            for (u, v) in zip(x, y) {
                let order = sortCompare(u, v)
                if order != .equal { return order }
            }
            return order(x.count, y.count)
        case (.object, .object):
            // Canonical bytes sort keys and normalise numbers, so equal objects compare equal.
            return lexicographic(CompactValueCodec.canonicalBytes(a), CompactValueCodec.canonicalBytes(b))
        default:
            if let order = compareNumbers(a, b) { return order }
            // NaN: equal to itself and below every other number, to keep the order total.
            let aNaN = a.doubleValue?.isNaN ?? false
            let bNaN = b.doubleValue?.isNaN ?? false
            if aNaN && bNaN { return .equal }
            return aNaN ? .less : .greater
        }
    }

    private static func rank(_ value: DataValue) -> Int {
        switch value {
        case .bool: return 0
        case .int, .uint, .double: return 1
        case .string: return 2
        case .binary: return 3
        case .array: return 4
        case .object: return 5
        case .null: return 6
        }
    }

    private static func order<T: Comparable>(_ a: T, _ b: T) -> ValueOrder {
        a < b ? .less : (a > b ? .greater : .equal)
    }

    private static func lexicographic(_ a: [UInt8], _ b: [UInt8]) -> ValueOrder {
        for (x, y) in zip(a, b) where x != y { return x < y ? .less : .greater }
        return order(a.count, b.count)
    }

    private static func compare(_ i: Int64, _ d: Double) -> ValueOrder? {
        if d.isNaN { return nil }
        if d >= 9_223_372_036_854_775_808.0 { return .less }
        if d < -9_223_372_036_854_775_808.0 { return .greater }
        let floor = d.rounded(.down)
        let whole = Int64(floor)
        if i != whole { return i < whole ? .less : .greater }
        return d > floor ? .less : .equal
    }

    private static func compare(_ u: UInt64, _ d: Double) -> ValueOrder? {
        if d.isNaN { return nil }
        if d < 0 { return .greater }
        if d >= 18_446_744_073_709_551_616.0 { return .less }
        let floor = d.rounded(.down)
        let whole = UInt64(floor)
        if u != whole { return u < whole ? .less : .greater }
        return d > floor ? .less : .equal
    }
}
