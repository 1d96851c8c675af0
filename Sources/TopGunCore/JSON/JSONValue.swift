/// A JSON value (RFC 8259) as `JSONReader` reads it: what wire text frames, map schemas,
/// token headers and control-plane bodies are parsed into, once each.
///
/// Object members keep their order (problems are reported in the order a tenant wrote them)
/// and names compare by their UTF-8 bytes, as in JSON and JavaScript, not by Swift's canonical
/// equivalence. Numbers keep how they were written (`JSONNumber`).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The JSON type's name, for error messages ("a string", "an object").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// An integer literal, or a whole number in `Int64` range written with a fraction or an
    /// exponent (`2.0`, `1e3`).
    public var int64Value: Int64? {
        guard case .number(let number) = self else { return nil }
        return number.int64Value
    }

    public static func integer(_ value: Int64) -> JSONValue { .number(.int(value)) }
}

/// A JSON number as written: integer literals stay exact in 64 bits, anything with a fraction
/// or an exponent (or beyond 64-bit integers) is a double. Never NaN or infinite.
public enum JSONNumber: Sendable, Hashable {
    case int(Int64)
    /// An integer literal above `Int64.max`.
    case uint(UInt64)
    case double(Double)

    public var doubleValue: Double {
        switch self {
        case .int(let value): Double(value)
        case .uint(let value): Double(value)
        case .double(let value): value
        }
    }

    /// The number as an `Int64` when it is a whole number in range.
    public var int64Value: Int64? {
        switch self {
        case .int(let value): value
        case .uint: nil
        case .double(let value): value.rounded(.towardZero) == value ? Int64(exactly: value) : nil
        }
    }

    /// The shortest text that reads back as the same number.
    public var text: String {
        switch self {
        case .int(let value): String(value)
        case .uint(let value): String(value)
        case .double(let value):
            // A whole number prints as the integer it is: `2.0` and `2` read back equal.
            if let exact = Int64(exactly: value) {
                String(exact)
            } else if let exact = UInt64(exactly: value) {
                String(exact)
            } else {
                value.description
            }
        }
    }
}

/// The members of a JSON object, in the order they were written. Member names are unique
/// (the reader refuses a repeated name) and compared by their UTF-8 bytes. Two objects are
/// equal when they hold the same members, in any order.
public struct JSONObject: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    public struct Member: Sendable, Hashable {
        public var name: String
        public var value: JSONValue

        public init(name: String, value: JSONValue) {
            self.name = name
            self.value = value
        }
    }

    public private(set) var members: [Member]

    public init() { members = [] }

    /// Members whose names are known to be distinct.
    init(uniqueMembers members: [Member]) { self.members = members }

    /// Later members replace earlier ones of the same name.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = []
        for (name, value) in elements { self[name] = value }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    /// Member names in written order.
    public var names: [String] { members.map(\.name) }

    /// The member named `name` (by UTF-8 bytes); setting nil removes it, setting a new name
    /// appends it.
    public subscript(name: String) -> JSONValue? {
        get { members.first { $0.name.hasSameUTF8(as: name) }?.value }
        set {
            let index = members.firstIndex { $0.name.hasSameUTF8(as: name) }
            switch (index, newValue) {
            case (let index?, let value?): members[index].value = value
            case (let index?, nil): members.remove(at: index)
            case (nil, let value?): members.append(Member(name: name, value: value))
            case (nil, nil): break
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.members.allSatisfy { rhs[$0.name] == $0.value }
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, like ==: a commutative combination of the members' hashes.
        var combined = 0
        for member in members {
            var memberHasher = Hasher()
            memberHasher.combine(Array(member.name.utf8))
            memberHasher.combine(member.value)
            combined ^= memberHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}

// MARK: - Text

extension JSONValue {
    /// Compact JSON with object members sorted by name in code point order: equal values give
    /// equal text whatever their white space and member order (schemas compared, request
    /// bodies fingerprinted for idempotency).
    public var canonicalText: String {
        var output = ""
        writeCanonical(to: &output)
        return output
    }

    private func writeCanonical(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let number): output += number.text
        case .string(let string): Self.writeQuoted(string, to: &output)
        case .array(let values):
            output += "["
            for (index, value) in values.enumerated() {
                if index > 0 { output += "," }
                value.writeCanonical(to: &output)
            }
            output += "]"
        case .object(let object):
            output += "{"
            // UTF-8 byte order is code point order; String's `<` compares by canonical
            // equivalence and could call two distinct names equal.
            let sorted = object.members.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { output += "," }
                Self.writeQuoted(member.name, to: &output)
                output += ":"
                member.value.writeCanonical(to: &output)
            }
            output += "}"
        }
    }

    /// `string` as a JSON string literal: quotes, backslashes and control characters escaped,
    /// everything else as it is.
    public static func quoted(_ string: String) -> String {
        var output = ""
        writeQuoted(string, to: &output)
        return output
    }

    public static func writeQuoted(_ string: String, to output: inout String) {
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

// MARK: - Encodable

extension JSONValue: Encodable {
    private struct MemberName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Encodes the value as the JSON it is (for response bodies that embed stored JSON).
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .object(let object):
            var container = encoder.container(keyedBy: MemberName.self)
            for member in object { try container.encode(member.value, forKey: MemberName(stringValue: member.name)) }
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        default:
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .number(.int(let value)): try container.encode(value)
            case .number(.uint(let value)): try container.encode(value)
            case .number(.double(let value)): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array, .object: break
            }
        }
    }
}
