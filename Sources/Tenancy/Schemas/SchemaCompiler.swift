import TopGunCore

/// The put-time checks: walks the parsed JSON, collects every problem (up to
/// `MapSchema.maxProblems`) with its JSON Pointer, and builds the compiled nodes.
struct SchemaCompiler {
    private(set) var problems: [SchemaProblem] = []

    private var isFull: Bool { problems.count >= MapSchema.maxProblems }

    mutating func report(_ pointer: String, _ message: String) {
        guard !isFull else { return }
        problems.append(SchemaProblem(pointer: pointer, message: message))
    }

    /// `depth` is 1 at the root.
    mutating func compile(_ json: JSONValue, at pointer: String, depth: Int) -> SchemaNode? {
        guard case .object(let members) = json else {
            report(pointer, "a schema must be an object, not \(json.typeName)")
            return nil
        }
        guard depth <= MapSchema.maxDepth else {
            report(pointer, "the schema nests deeper than \(MapSchema.maxDepth) levels")
            return nil
        }
        var types: JSONTypeSet?
        var properties: [UTF8Key: SchemaNode] = [:]
        var required: [String] = []
        var additional = SchemaNode.Additional.allowed
        var enumValues: [JSONValue]?
        var minimum: SchemaNumber?
        var maximum: SchemaNumber?
        var minLength: Int?
        var maxLength: Int?
        var pattern: ECMAPattern?
        var items: SchemaNode?

        for member in members {
            if isFull { break }
            let here = JSONPointer.appending(pointer, member.name)
            let value = member.value
            switch member.name {
            case "$schema":
                checkAnnotation(value, name: "$schema", maxLength: 200, at: here)
            case "title":
                checkAnnotation(value, name: "title", maxLength: 200, at: here)
            case "description":
                checkAnnotation(value, name: "description", maxLength: 2000, at: here)
            case "type":
                types = compileType(value, at: here)
            case "properties":
                properties = compileProperties(value, at: here, depth: depth)
            case "required":
                required = compileRequired(value, at: here)
            case "enum":
                enumValues = compileEnum(value, at: here)
            case "minimum":
                minimum = number(value, name: "minimum", at: here)
            case "maximum":
                maximum = number(value, name: "maximum", at: here)
            case "minLength":
                minLength = length(value, name: "minLength", at: here)
            case "maxLength":
                maxLength = length(value, name: "maxLength", at: here)
            case "pattern":
                pattern = compilePattern(value, at: here)
            case "items":
                items = compile(value, at: here, depth: depth + 1)
            case "additionalProperties":
                switch value {
                case .bool(let allowed): additional = allowed ? .allowed : .forbidden
                case .object:
                    if let node = compile(value, at: here, depth: depth + 1) { additional = .schema(node) }
                default: report(here, "additionalProperties must be a boolean or a schema (an object), not \(value.typeName)")
                }
            default:
                report(here, "keyword '\(member.name)' is not supported")
            }
        }
        if let minimum, let maximum, SchemaNumber.compare(minimum, maximum) > 0 {
            report(JSONPointer.appending(pointer, "minimum"), "minimum (\(minimum.text)) is greater than maximum (\(maximum.text))")
        }
        if let minLength, let maxLength, minLength > maxLength {
            report(JSONPointer.appending(pointer, "minLength"), "minLength (\(minLength)) is greater than maxLength (\(maxLength))")
        }
        return SchemaNode(
            types: types, properties: properties, required: required, additional: additional,
            enumValues: enumValues, minimum: minimum, maximum: maximum, minLength: minLength,
            maxLength: maxLength, pattern: pattern, items: items)
    }

    private mutating func checkAnnotation(_ value: JSONValue, name: String, maxLength: Int, at pointer: String) {
        guard case .string(let text) = value else {
            report(pointer, "\(name) must be a string, not \(value.typeName)")
            return
        }
        if text.unicodeScalars.count > maxLength {
            report(pointer, "\(name) must be at most \(maxLength) characters")
        }
    }

    private mutating func compileType(_ value: JSONValue, at pointer: String) -> JSONTypeSet? {
        let expected = "null, boolean, integer, number, string, array, object"
        switch value {
        case .string(let name):
            guard let type = JSONTypeSet.named(name) else {
                report(pointer, "unknown type '\(name)'; expected one of \(expected)")
                return nil
            }
            return type
        case .array(let names):
            if names.isEmpty { report(pointer, "type must list at least one type") }
            if names.count > 7 { report(pointer, "type must list at most 7 types") }
            var types: JSONTypeSet = []
            var valid = !names.isEmpty && names.count <= 7
            for (index, element) in names.enumerated() {
                let here = pointer + "/" + String(index)
                guard case .string(let name) = element else {
                    report(here, "a type must be a string, not \(element.typeName)")
                    valid = false
                    continue
                }
                guard let type = JSONTypeSet.named(name) else {
                    report(here, "unknown type '\(name)'; expected one of \(expected)")
                    valid = false
                    continue
                }
                if types.contains(type) {
                    report(here, "type '\(name)' is listed twice")
                    valid = false
                }
                types.insert(type)
            }
            return valid ? types : nil
        default:
            report(pointer, "type must be a string or an array of strings, not \(value.typeName)")
            return nil
        }
    }

    private mutating func compileProperties(_ value: JSONValue, at pointer: String, depth: Int) -> [UTF8Key: SchemaNode] {
        guard case .object(let members) = value else {
            report(pointer, "properties must be an object, not \(value.typeName)")
            return [:]
        }
        if members.count > 1000 {
            report(pointer, "properties has \(members.count) members; at most 1000")
        }
        var nodes: [UTF8Key: SchemaNode] = [:]
        for member in members {
            if isFull { break }
            let here = JSONPointer.appending(pointer, member.name)
            let length = member.name.unicodeScalars.count
            if length < 1 || length > 256 {
                report(here, "a property name must be 1 to 256 characters")
            }
            if let node = compile(member.value, at: here, depth: depth + 1) {
                nodes[UTF8Key(member.name)] = node
            }
        }
        return nodes
    }

    private mutating func compileRequired(_ value: JSONValue, at pointer: String) -> [String] {
        guard case .array(let elements) = value else {
            report(pointer, "required must be an array of strings, not \(value.typeName)")
            return []
        }
        if elements.count > 1000 {
            report(pointer, "required lists \(elements.count) names; at most 1000")
        }
        var names: [String] = []
        var seen = Set<UTF8Key>()
        for (index, element) in elements.enumerated() {
            if isFull { break }
            let here = pointer + "/" + String(index)
            guard case .string(let name) = element else {
                report(here, "a required name must be a string, not \(element.typeName)")
                continue
            }
            let length = name.unicodeScalars.count
            if length < 1 || length > 256 {
                report(here, "a required name must be 1 to 256 characters")
            }
            if !seen.insert(UTF8Key(name)).inserted {
                report(here, "'\(name)' is listed twice")
                continue
            }
            names.append(name)
        }
        return names
    }

    private mutating func compileEnum(_ value: JSONValue, at pointer: String) -> [JSONValue]? {
        guard case .array(let values) = value else {
            report(pointer, "enum must be an array, not \(value.typeName)")
            return nil
        }
        if values.isEmpty { report(pointer, "enum must list at least one value") }
        if values.count > 1000 { report(pointer, "enum lists \(values.count) values; at most 1000") }
        return values
    }

    private mutating func number(_ value: JSONValue, name: String, at pointer: String) -> SchemaNumber? {
        guard case .number(let number) = value else {
            report(pointer, "\(name) must be a number, not \(value.typeName)")
            return nil
        }
        return SchemaNumber(number)
    }

    private mutating func length(_ value: JSONValue, name: String, at pointer: String) -> Int? {
        if case .number(let number) = value, case .int(let length) = SchemaNumber(number), length >= 0, length <= MapSchema.maxStringLength {
            return Int(length)
        }
        report(pointer, "\(name) must be an integer from 0 to \(MapSchema.maxStringLength)")
        return nil
    }

    private mutating func compilePattern(_ value: JSONValue, at pointer: String) -> ECMAPattern? {
        guard case .string(let source) = value else {
            report(pointer, "pattern must be a string, not \(value.typeName)")
            return nil
        }
        let length = source.unicodeScalars.count
        guard length >= 1, length <= 1024 else {
            report(pointer, "pattern must be 1 to 1024 characters")
            return nil
        }
        do {
            return try ECMAPattern(source)
        } catch {
            report(pointer, "pattern does not compile: \(error.message)")
            return nil
        }
    }
}
