import TopGunCore

/// A Swift type that a message field can hold, with its wire conversion.
///
/// Numbers follow protocol.md §6.2: any MessagePack integer width or float is accepted,
/// and an integer field accepts a whole float (msgpackr writes 1.7e12 as float64).
public protocol WireField: Sendable {
    init(wire value: DataValue) throws(WireDecodingError)
    var wireValue: DataValue { get }
}

extension DataValue {
    /// A number as the compact wire form: an integer when whole and in range, else float64.
    @inlinable
    public static func number(_ value: Double) -> DataValue {
        if value.rounded(.towardZero) == value, let exact = Int64(exactly: value) { return .int(exact) }
        return .double(value)
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "nil"
        case .bool: return "bool"
        case .int, .uint, .double: return "number"
        case .string: return "string"
        case .binary: return "binary"
        case .array: return "array"
        case .object: return "map"
        }
    }
}

extension WireDecodingError {
    @usableFromInline
    static func wrongType(_ expected: String, got value: DataValue) -> WireDecodingError {
        WireDecodingError(.wrongType(expected: "\(expected), got \(value.kindName)"))
    }
}

extension String: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        guard case .string(let string) = value else { throw .wrongType("string", got: value) }
        self = string
    }
    @inlinable
    public var wireValue: DataValue { .string(self) }
}

extension Bool: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        guard case .bool(let bool) = value else { throw .wrongType("bool", got: value) }
        self = bool
    }
    @inlinable
    public var wireValue: DataValue { .bool(self) }
}

extension Int64: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        switch value {
        case .int(let i): self = i
        case .double(let d):
            guard let exact = Int64(exactly: d) else {
                throw WireDecodingError(.invalidValue("expected an integer, got \(d)"))
            }
            self = exact
        case .uint: throw WireDecodingError(.invalidValue("integer out of range"))
        default: throw .wrongType("integer", got: value)
        }
    }
    @inlinable
    public var wireValue: DataValue { .int(self) }
}

extension Int: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        self = Int(try Int64(wire: value))
    }
    @inlinable
    public var wireValue: DataValue { .int(Int64(self)) }
}

extension UInt32: WireField {
    /// Hashes (Merkle roots and buckets) are unsigned 32-bit.
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        let wide = try Int64(wire: value)
        guard let exact = UInt32(exactly: wide) else {
            throw WireDecodingError(.invalidValue("expected an unsigned 32-bit integer, got \(wide)"))
        }
        self = exact
    }
    @inlinable
    public var wireValue: DataValue { .int(Int64(self)) }
}

extension Double: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        guard let number = value.doubleValue else { throw .wrongType("number", got: value) }
        self = number
    }
    @inlinable
    public var wireValue: DataValue { .number(self) }
}

extension DataValue: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) { self = value }
    @inlinable
    public var wireValue: DataValue { self }
}

extension DataObject: WireField {
    @inlinable
    public init(wire value: DataValue) throws(WireDecodingError) {
        guard case .object(let object) = value else { throw .wrongType("map", got: value) }
        self = object
    }
    @inlinable
    public var wireValue: DataValue { .object(self) }
}

extension Array: WireField where Element: WireField {
    public init(wire value: DataValue) throws(WireDecodingError) {
        guard case .array(let elements) = value else { throw .wrongType("array", got: value) }
        var result: [Element] = []
        result.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            do {
                result.append(try Element(wire: element))
            } catch {
                throw error.inField("[\(index)]")
            }
        }
        self = result
    }
    public var wireValue: DataValue { .array(map(\.wireValue)) }
}

/// A map from string keys to typed values that keeps the order it arrived in
/// (bucket hashes, per-method scores, per-key batch results).
public struct WireDictionary<Value: WireField & Equatable>: WireField, Equatable {
    public var entries: [(key: String, value: Value)]

    public init(_ entries: [(key: String, value: Value)]) { self.entries = entries }

    public init(wire value: DataValue) throws(WireDecodingError) {
        guard case .object(let object) = value else { throw .wrongType("map", got: value) }
        var entries: [(key: String, value: Value)] = []
        entries.reserveCapacity(object.count)
        for field in object.fields {
            do {
                entries.append((field.key, try Value(wire: field.value)))
            } catch {
                throw error.inField(field.key)
            }
        }
        self.entries = entries
    }

    public var wireValue: DataValue {
        .object(DataObject(fields: entries.map { DataObject.Field(key: $0.key, value: $0.value.wireValue) }))
    }

    public subscript(key: String) -> Value? {
        entries.first { $0.key.hasSameUTF8(as: key) }?.value
    }

    public static func == (lhs: WireDictionary, rhs: WireDictionary) -> Bool {
        lhs.entries.count == rhs.entries.count && lhs.entries.allSatisfy { rhs[$0.key] == $0.value }
    }
}

// MARK: - Reading and writing fields of a map

extension DataObject {
    /// The required field `key`, converted; errors name the field.
    @inlinable
    public func required<T: WireField>(_ key: String, as _: T.Type = T.self) throws(WireDecodingError) -> T {
        guard let value = self[key], !value.isNull else {
            throw WireDecodingError(.missingField, field: key)
        }
        do {
            return try T(wire: value)
        } catch {
            throw error.inField(key)
        }
    }

    /// The optional field `key`: absent and nil both read as nil.
    @inlinable
    public func optional<T: WireField>(_ key: String, as _: T.Type = T.self) throws(WireDecodingError) -> T? {
        guard let value = self[key], !value.isNull else { return nil }
        do {
            return try T(wire: value)
        } catch {
            throw error.inField(key)
        }
    }

    /// Appends `key` when `value` is present; absent optionals are omitted on the wire.
    @inlinable
    public mutating func append<T: WireField>(_ key: String, _ value: T?) {
        if let value { fields.append(Field(key: key, value: value.wireValue)) }
    }
}
