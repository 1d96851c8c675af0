import TopGunCore

/// The JSON types a `type` keyword names. `number` includes integers.
struct JSONTypeSet: OptionSet, Sendable, Hashable {
    let rawValue: UInt8

    static let null = JSONTypeSet(rawValue: 1 << 0)
    static let boolean = JSONTypeSet(rawValue: 1 << 1)
    static let integer = JSONTypeSet(rawValue: 1 << 2)
    static let number = JSONTypeSet(rawValue: 1 << 3)
    static let string = JSONTypeSet(rawValue: 1 << 4)
    static let array = JSONTypeSet(rawValue: 1 << 5)
    static let object = JSONTypeSet(rawValue: 1 << 6)

    /// Contract order, used in messages.
    static let names: [(String, JSONTypeSet)] = [
        ("null", .null), ("boolean", .boolean), ("integer", .integer), ("number", .number),
        ("string", .string), ("array", .array), ("object", .object),
    ]

    static func named(_ name: String) -> JSONTypeSet? {
        names.first { $0.0 == name }?.1
    }

    var listing: String {
        Self.names.filter { contains($0.1) }.map(\.0).joined(separator: " or ")
    }
}

/// One compiled schema level: what the put-time checks accepted, in the form the write
/// path reads fastest (patterns compiled, properties hashed).
final class SchemaNode: Sendable {
    enum Additional: Sendable {
        case allowed
        case forbidden
        case schema(SchemaNode)
    }

    let types: JSONTypeSet?
    let properties: [UTF8Key: SchemaNode]
    let required: [String]
    let additional: Additional
    let enumValues: [JSONValue]?
    let minimum: SchemaNumber?
    let maximum: SchemaNumber?
    let minLength: Int?
    let maxLength: Int?
    let pattern: ECMAPattern?
    let items: SchemaNode?

    init(
        types: JSONTypeSet?, properties: [UTF8Key: SchemaNode], required: [String], additional: Additional,
        enumValues: [JSONValue]?, minimum: SchemaNumber?, maximum: SchemaNumber?, minLength: Int?,
        maxLength: Int?, pattern: ECMAPattern?, items: SchemaNode?
    ) {
        self.types = types
        self.properties = properties
        self.required = required
        self.additional = additional
        self.enumValues = enumValues
        self.minimum = minimum
        self.maximum = maximum
        self.minLength = minLength
        self.maxLength = maxLength
        self.pattern = pattern
        self.items = items
    }
}

// MARK: - Applying

/// Where the check is inside the value; rendered as a JSON Pointer only for a violation.
enum PathStep {
    case key(String)
    case index(Int)
}

struct ViolationSink {
    var violations: [SchemaViolation] = []
    let limit: Int

    var isFull: Bool { violations.count >= limit }

    mutating func report(_ message: String, at path: [PathStep]) {
        guard !isFull else { return }
        var pointer = ""
        for step in path {
            switch step {
            case .key(let key): pointer += "/" + JSONPointer.escape(key)
            case .index(let index): pointer += "/" + String(index)
            }
        }
        violations.append(SchemaViolation(pointer: pointer, message: message))
    }
}

extension SchemaNode {
    func check(_ value: DataValue, path: inout [PathStep], sink: inout ViolationSink) {
        if let types, !Self.matches(value, types) {
            sink.report("expected \(types.listing), got \(Self.typeName(of: value))", at: path)
            return
        }
        if let enumValues, !enumValues.contains(where: { Self.jsonEquals($0, value) }) {
            sink.report("is not one of the enum values", at: path)
            if sink.isFull { return }
        }
        switch value {
        case .int, .uint, .double:
            checkBounds(value, path: path, sink: &sink)
        case .string(let string):
            checkString(string, path: path, sink: &sink)
        case .array(let elements):
            guard let items else { return }
            for (index, element) in elements.enumerated() {
                path.append(.index(index))
                items.check(element, path: &path, sink: &sink)
                path.removeLast()
                if sink.isFull { return }
            }
        case .object(let object):
            checkObject(object, path: &path, sink: &sink)
        case .null, .bool, .binary:
            break
        }
    }

    private func checkBounds(_ value: DataValue, path: [PathStep], sink: inout ViolationSink) {
        guard minimum != nil || maximum != nil else { return }
        let number: SchemaNumber
        switch value {
        case .int(let i): number = .int(i)
        case .uint(let u): number = SchemaNumber(exactly: u)
        case .double(let d):
            if d.isNaN {
                sink.report("NaN cannot be compared with minimum or maximum", at: path)
                return
            }
            if d.isInfinite {
                if d < 0, let minimum {
                    sink.report("-Infinity is less than the minimum \(minimum.text)", at: path)
                } else if d > 0, let maximum {
                    sink.report("Infinity is greater than the maximum \(maximum.text)", at: path)
                }
                return
            }
            number = SchemaNumber(d)
        default: return
        }
        if let minimum, SchemaNumber.compare(number, minimum) < 0 {
            sink.report("\(number.text) is less than the minimum \(minimum.text)", at: path)
        } else if let maximum, SchemaNumber.compare(number, maximum) > 0 {
            sink.report("\(number.text) is greater than the maximum \(maximum.text)", at: path)
        }
    }

    private func checkString(_ string: String, path: [PathStep], sink: inout ViolationSink) {
        if minLength != nil || maxLength != nil {
            // Code points never outnumber UTF-8 bytes, nor are fewer than a quarter of
            // them: most strings are decided without counting.
            let bytes = string.utf8.count
            if let minLength, bytes < minLength || (bytes / 4 < minLength && string.unicodeScalars.count < minLength) {
                sink.report("is \(string.unicodeScalars.count) characters long, fewer than the minLength \(minLength)", at: path)
                if sink.isFull { return }
            }
            if let maxLength, bytes > maxLength, string.unicodeScalars.count > maxLength {
                sink.report("is \(string.unicodeScalars.count) characters long, more than the maxLength \(maxLength)", at: path)
                if sink.isFull { return }
            }
        }
        if let pattern {
            switch pattern.search(string) {
            case .match: break
            case .noMatch: sink.report("does not match the pattern \(pattern.source)", at: path)
            case .tooExpensive: sink.report("the pattern \(pattern.source) is too expensive to evaluate on this value", at: path)
            }
        }
    }

    private func checkObject(_ object: DataObject, path: inout [PathStep], sink: inout ViolationSink) {
        for name in required where !object.fields.contains(where: { sameUTF8($0.key, name) }) {
            sink.report("missing required member '\(name)'", at: path)
            if sink.isFull { return }
        }
        if properties.isEmpty, case .allowed = additional { return }
        for field in object.fields {
            let child: SchemaNode
            if !properties.isEmpty, let declared = properties[UTF8Key(field.key)] {
                child = declared
            } else {
                switch additional {
                case .allowed: continue
                case .forbidden:
                    path.append(.key(field.key))
                    sink.report("is not allowed (additionalProperties is false)", at: path)
                    path.removeLast()
                    if sink.isFull { return }
                    continue
                case .schema(let node): child = node
                }
            }
            path.append(.key(field.key))
            child.check(field.value, path: &path, sink: &sink)
            path.removeLast()
            if sink.isFull { return }
        }
    }

    // MARK: JSON equivalents

    static func matches(_ value: DataValue, _ types: JSONTypeSet) -> Bool {
        switch value {
        case .null: types.contains(.null)
        case .bool: types.contains(.boolean)
        case .int, .uint: !types.isDisjoint(with: [.integer, .number])
        case .double(let d):
            types.contains(.number) || (types.contains(.integer) && d.isFinite && d.rounded(.towardZero) == d)
        case .string: types.contains(.string)
        case .array: types.contains(.array)
        case .object: types.contains(.object)
        case .binary: false
        }
    }

    static func typeName(of value: DataValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .int, .uint: "integer"
        case .double(let d): d.isFinite && d.rounded(.towardZero) == d ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        case .binary: "binary"
        }
    }

    /// Equality as JSON: numbers by value (`1 == 1.0`), strings by code points, objects
    /// whatever their member order. Binary and non-finite numbers equal nothing.
    static func jsonEquals(_ json: JSONValue, _ value: DataValue) -> Bool {
        switch (json, value) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .int(let b)): return SchemaNumber.compare(SchemaNumber(a), .int(b)) == 0
        case (.number(let a), .uint(let b)): return SchemaNumber.compare(SchemaNumber(a), SchemaNumber(exactly: b)) == 0
        case (.number(let a), .double(let b)): return b.isFinite && SchemaNumber.compare(SchemaNumber(a), SchemaNumber(b)) == 0
        case (.string(let a), .string(let b)): return sameUTF8(a, b)
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            return zip(a, b).allSatisfy { jsonEquals($0, $1) }
        case (.object(let members), .object(let object)):
            guard members.count == object.fields.count else { return false }
            // Equal counts and every member found means the same member set (JSON text
            // has no duplicate names; a value with duplicates misses one of ours).
            for member in members {
                guard let field = object.fields.first(where: { sameUTF8($0.key, member.name) }),
                      jsonEquals(member.value, field.value)
                else { return false }
            }
            return true
        default: return false
        }
    }
}
