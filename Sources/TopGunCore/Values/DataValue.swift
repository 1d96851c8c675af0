/// A dynamically typed value as it travels in records, topic messages and query results.
///
/// It models exactly what MessagePack (and the JSON form of the protocol) can carry, minus
/// extension types, which the protocol never sends. Maps are objects with string keys,
/// because the TypeScript client turns every map into a JavaScript object.
///
/// Equality is by value, the way the TypeScript client compares data: object key order is
/// ignored, and a whole `double` equals the `int` of the same value (msgpackr writes large
/// integers as float64, so `1700000000000` may arrive either way).
public enum DataValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    /// Only for unsigned values above `Int64.max`; smaller ones are `.int`.
    case uint(UInt64)
    case double(Double)
    case string(String)
    case binary([UInt8])
    case array([DataValue])
    case object(DataObject)
}

/// An ordered map from string keys to values. Order is kept so that a decoded message
/// re-encodes (and prints) in the order it arrived; lookups are linear, which is the fast
/// choice for the small objects the protocol carries.
public struct DataObject: Sendable {
    public struct Field: Sendable {
        public var key: String
        public var value: DataValue
        @inlinable
        public init(key: String, value: DataValue) {
            self.key = key
            self.value = value
        }
    }

    public var fields: [Field]

    @inlinable
    public init() { self.fields = [] }

    @inlinable
    public init(fields: [Field]) { self.fields = fields }

    @inlinable
    public init(_ pairs: KeyValuePairs<String, DataValue>) {
        self.fields = pairs.map { Field(key: $0.key, value: $0.value) }
    }

    @inlinable
    public var count: Int { fields.count }

    @inlinable
    public var isEmpty: Bool { fields.isEmpty }

    @inlinable
    public var keys: [String] { fields.map(\.key) }

    /// The value under `key`, or nil when absent. Setting nil removes the key; setting a
    /// value replaces it in place or appends it. Keys compare byte for byte, as JavaScript's
    /// property names do ("\u{e9}" and "e\u{301}" are two properties).
    @inlinable
    public subscript(key: String) -> DataValue? {
        get {
            for field in fields where field.key.hasSameUTF8(as: key) { return field.value }
            return nil
        }
        set {
            if let index = fields.firstIndex(where: { $0.key.hasSameUTF8(as: key) }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append(Field(key: key, value: newValue))
            }
        }
    }

    @inlinable
    public mutating func append(_ key: String, _ value: DataValue) {
        fields.append(Field(key: key, value: value))
    }
}

extension DataObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, DataValue)...) {
        self.fields = elements.map { Field(key: $0.0, value: $0.1) }
    }
}

// Deliberately not ExpressibleByNilLiteral: with it, `cond ? nil : value` silently becomes
// `.null` where `DataValue?.none` was meant (a tombstone read as a live null).
extension DataValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: DataValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, DataValue)...) {
        self = .object(DataObject(fields: elements.map { DataObject.Field(key: $0.0, value: $0.1) }))
    }
}

// MARK: - Accessors

extension DataValue {
    @inlinable
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    @inlinable
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    @inlinable
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    @inlinable
    public var objectValue: DataObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    @inlinable
    public var arrayValue: [DataValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Any numeric case as a Double (large unsigned values lose precision, as in JavaScript).
    @inlinable
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Any numeric case that holds a whole number representable as Int64.
    @inlinable
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .uint: return nil
        case .double(let d):
            guard d.rounded(.towardZero) == d, d >= -9.223372036854775808e18, d < 9.223372036854775808e18 else { return nil }
            return Int64(d)
        default: return nil
        }
    }

    @inlinable
    public var isNumber: Bool {
        switch self {
        case .int, .uint, .double: return true
        default: return false
        }
    }

    /// Follows a dotted path (`a.b.c`) through nested objects; nil when any step is missing.
    public func value(atPath path: String) -> DataValue? {
        if !path.contains(".") {
            return objectValue?[path]
        }
        var current: DataValue = self
        for component in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard case .object(let object) = current, let next = object[String(component)] else { return nil }
            current = next
        }
        return current
    }
}

// MARK: - Equality by value

extension DataValue: Equatable {
    public static func == (lhs: DataValue, rhs: DataValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        // Byte for byte, as JavaScript's `===` compares strings (code unit for code unit).
        case (.string(let a), .string(let b)): return a.hasSameUTF8(as: b)
        case (.binary(let a), .binary(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.int, .uint), (.uint, .int): return false
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)):
            return Double(a) == b && Int64(exactly: b) == a
        case (.uint(let a), .double(let b)), (.double(let b), .uint(let a)):
            return Double(a) == b && UInt64(exactly: b) == a
        default: return false
        }
    }
}

extension DataObject: Equatable {
    /// Same keys with equal values, in any order.
    public static func == (lhs: DataObject, rhs: DataObject) -> Bool {
        guard lhs.fields.count == rhs.fields.count else { return false }
        for field in lhs.fields {
            guard let other = rhs[field.key], other == field.value else { return false }
        }
        return true
    }
}

extension DataValue: Hashable {
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(1); hasher.combine(b)
        // Numbers hash by their Double value so that equal int and double hash alike.
        case .int(let i): hasher.combine(2); hasher.combine(Double(i))
        case .uint(let u): hasher.combine(2); hasher.combine(Double(u))
        case .double(let d): hasher.combine(2); hasher.combine(d)
        case .string(let s): hasher.combine(3); hasher.combine(s)
        case .binary(let b): hasher.combine(4); hasher.combine(b)
        case .array(let a): hasher.combine(5); hasher.combine(a)
        case .object(let o): hasher.combine(6); hasher.combine(o)
        }
    }
}

extension DataObject: Hashable {
    public func hash(into hasher: inout Hasher) {
        // Order-independent: combine per-field hashes commutatively.
        var sum = 0
        for field in fields {
            var h = Hasher()
            h.combine(field.key)
            h.combine(field.value)
            sum = sum &+ h.finalize()
        }
        hasher.combine(fields.count)
        hasher.combine(sum)
    }
}
