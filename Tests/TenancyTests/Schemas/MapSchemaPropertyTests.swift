import Testing
import TopGunCore
@testable import Tenancy

// Properties over generated schemas and values. The generators take a seed and draw from a
// deterministic generator, so a failure names the seed that reproduces it. (TenancyTests
// does not depend on swift-property-based; with it, `propertyCheck(input: Gen.uint64...)`
// would feed the same functions.)

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A generated schema, with enough structure to generate values that satisfy it.
indirect enum SchemaSpec {
    case null
    case boolean
    case integer(min: Int64?, max: Int64?, nullable: Bool)
    case number(min: Double?, max: Double?)
    case string(minLength: Int?, maxLength: Int?)
    case patterned(PatternSample)
    case choice([DataValue])
    case array(items: SchemaSpec?)
    case object(properties: [(name: String, spec: SchemaSpec)], required: Set<String>, additional: Bool)
}

/// A pattern and a way to produce strings it matches.
struct PatternSample: Sendable {
    var source: String
    var make: @Sendable (inout SeededGenerator) -> String
}

enum SchemaGen {
    static let names = ["a", "b", "id", "a/b", "m~n", "~1", "\u{E9}t\u{E9}", "\u{1F600}", "x y", "\"q\""]
    static let exotic: [Character] = ["a", "Z", "0", " ", "\u{E9}", "e\u{301}", "\u{1F600}", "\u{1F468}\u{200D}\u{1F469}", "\u{4E2D}", "\"", "\\", "\n"]

    static let patterns: [PatternSample] = [
        PatternSample(source: "^[a-z]+$") { rng in String((0...Int.random(in: 0...8, using: &rng)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 97...122, using: &rng))) }) },
        PatternSample(source: "^\\d{3}-\\d{4}$") { rng in "\(Int.random(in: 100...999, using: &rng))-\(Int.random(in: 1000...9999, using: &rng))" },
        PatternSample(source: "ab") { rng in String(repeating: "\u{E9}", count: Int.random(in: 0...3, using: &rng)) + "ab" + String(repeating: "z", count: Int.random(in: 0...3, using: &rng)) },
        PatternSample(source: "^(x|yz)*$") { rng in (0..<Int.random(in: 0...6, using: &rng)).map { _ in Bool.random(using: &rng) ? "x" : "yz" }.joined() },
        PatternSample(source: "^\\p{L}[\\p{L}\\d_]{0,5}$") { rng in "\u{E9}" + String(repeating: "_1", count: Int.random(in: 0...2, using: &rng)) },
        PatternSample(source: "^(?!admin$).+") { rng in ["user", "admins", "x"][Int.random(in: 0...2, using: &rng)] },
    ]

    static func spec(depth: Int, using rng: inout SeededGenerator) -> SchemaSpec {
        let kind = Int.random(in: 0...(depth >= 3 ? 6 : 8), using: &rng)
        switch kind {
        case 0: return .null
        case 1: return .boolean
        case 2:
            let low = Bool.random(using: &rng) ? Int64.random(in: -1000...1000, using: &rng) : nil
            let high = Bool.random(using: &rng) ? (low ?? 0) + Int64.random(in: 0...1000, using: &rng) : nil
            return .integer(min: low, max: high, nullable: Bool.random(using: &rng))
        case 3:
            let low = Bool.random(using: &rng) ? Double.random(in: -1e6...1e6, using: &rng) : nil
            let high = Bool.random(using: &rng) ? (low ?? 0) + Double.random(in: 0...1e3, using: &rng) : nil
            return .number(min: low, max: high)
        case 4:
            let low = Bool.random(using: &rng) ? Int.random(in: 0...5, using: &rng) : nil
            let high = Bool.random(using: &rng) ? (low ?? 0) + Int.random(in: 0...5, using: &rng) : nil
            return .string(minLength: low, maxLength: high)
        case 5: return .patterned(patterns[Int.random(in: 0..<patterns.count, using: &rng)])
        case 6:
            let values = (0..<Int.random(in: 1...4, using: &rng)).map { _ in jsonValue(depth: 0, using: &rng) }
            return .choice(values)
        case 7: return .array(items: Bool.random(using: &rng) ? spec(depth: depth + 1, using: &rng) : nil)
        default:
            var properties: [(name: String, spec: SchemaSpec)] = []
            for name in names.shuffled(using: &rng).prefix(Int.random(in: 0...4, using: &rng)) {
                properties.append((name, spec(depth: depth + 1, using: &rng)))
            }
            let required = Set(properties.map(\.name).filter { _ in Bool.random(using: &rng) })
            return .object(properties: properties, required: required, additional: Bool.random(using: &rng))
        }
    }

    /// A JSON-representable value (no binary, finite numbers).
    static func jsonValue(depth: Int, using rng: inout SeededGenerator) -> DataValue {
        switch Int.random(in: 0...(depth >= 2 ? 4 : 6), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64.random(in: -5...5, using: &rng))
        case 3: return .double(Double(Int.random(in: -100...100, using: &rng)) / 4)
        case 4: return .string(text(count: Int.random(in: 0...4, using: &rng), using: &rng))
        case 5: return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in jsonValue(depth: depth + 1, using: &rng) })
        default:
            var object = DataObject()
            for name in names.shuffled(using: &rng).prefix(Int.random(in: 0...3, using: &rng)) {
                object.append(name, jsonValue(depth: depth + 1, using: &rng))
            }
            return .object(object)
        }
    }

    /// `count` code points of mixed widths (graphemes may hold several).
    static func text(count: Int, using rng: inout SeededGenerator) -> String {
        var scalars = String.UnicodeScalarView()
        while scalars.count < count {
            let piece = exotic[Int.random(in: 0..<exotic.count, using: &rng)].unicodeScalars
            for scalar in piece where scalars.count < count { scalars.append(scalar) }
        }
        return String(scalars)
    }

    /// The schema as JSON text, members in random order with random white space.
    static func render(_ spec: SchemaSpec, using rng: inout SeededGenerator) -> String {
        var members: [(String, String)] = []
        switch spec {
        case .null: members.append(("type", quote("null")))
        case .boolean: members.append(("type", quote("boolean")))
        case .integer(let low, let high, let nullable):
            members.append(("type", nullable ? "[\(quote("integer")),\(quote("null"))]" : quote("integer")))
            if let low { members.append(("minimum", Bool.random(using: &rng) ? "\(low)" : "\(low).0")) }
            if let high { members.append(("maximum", "\(high)")) }
        case .number(let low, let high):
            members.append(("type", quote("number")))
            if let low { members.append(("minimum", "\(low)")) }
            if let high { members.append(("maximum", "\(high)")) }
        case .string(let low, let high):
            members.append(("type", quote("string")))
            if let low { members.append(("minLength", "\(low)")) }
            if let high { members.append(("maxLength", "\(high)")) }
        case .patterned(let sample):
            members.append(("type", quote("string")))
            members.append(("pattern", quote(sample.source)))
        case .choice(let values):
            members.append(("enum", "[" + values.map { json($0, using: &rng) }.joined(separator: ",") + "]"))
        case .array(let items):
            members.append(("type", quote("array")))
            if let items { members.append(("items", render(items, using: &rng))) }
        case .object(let properties, let required, let additional):
            members.append(("type", quote("object")))
            let rendered = properties.map { "\(quote($0.name)):\(render($0.spec, using: &rng))" }
            members.append(("properties", "{" + rendered.shuffled(using: &rng).joined(separator: ",") + "}"))
            if !required.isEmpty { members.append(("required", "[" + required.sorted().map(quote).joined(separator: ",") + "]")) }
            if !additional { members.append(("additionalProperties", "false")) }
        }
        let space = [" ", "", "\n  ", "\t"]
        let pad = { (rng: inout SeededGenerator) in space[Int.random(in: 0..<space.count, using: &rng)] }
        var parts: [String] = []
        for (key, value) in members.shuffled(using: &rng) {
            parts.append(pad(&rng) + quote(key) + pad(&rng) + ":" + pad(&rng) + value)
        }
        return "{" + parts.joined(separator: ",") + pad(&rng) + "}"
    }

    static func quote(_ string: String) -> String {
        JSONValue.quoted(string)
    }

    /// JSON text of a value, with object members in random order.
    static func json(_ value: DataValue, using rng: inout SeededGenerator) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .uint(let u): return "\(u)"
        case .double(let d): return "\(d)"
        case .string(let s): return quote(s)
        case .array(let a): return "[" + a.map { json($0, using: &rng) }.joined(separator: ",") + "]"
        case .object(let o): return "{" + o.fields.shuffled(using: &rng).map { quote($0.key) + ":" + json($0.value, using: &rng) }.joined(separator: ",") + "}"
        case .binary: return "null"
        }
    }

    /// A value the spec accepts, in a randomly chosen equivalent form (`2.0` for `2`,
    /// members reordered).
    static func conformingValue(_ spec: SchemaSpec, using rng: inout SeededGenerator) -> DataValue {
        switch spec {
        case .null: return .null
        case .boolean: return .bool(Bool.random(using: &rng))
        case .integer(let low, let high, let nullable):
            if nullable, Int.random(in: 0...3, using: &rng) == 0 { return .null }
            let lower = low ?? (high ?? 0) - 1000
            let value = Int64.random(in: lower...(high ?? lower + 1000), using: &rng)
            return Bool.random(using: &rng) ? .int(value) : .double(Double(value))
        case .number(let low, let high):
            let lower = low ?? (high ?? 0) - 1000
            return .double(Double.random(in: lower...(high ?? lower + 1000), using: &rng))
        case .string(let low, let high):
            let lower = low ?? 0
            return .string(text(count: Int.random(in: lower...(high ?? lower + 6), using: &rng), using: &rng))
        case .patterned(let sample):
            return .string(sample.make(&rng))
        case .choice(let values):
            return reshaped(values[Int.random(in: 0..<values.count, using: &rng)], using: &rng)
        case .array(let items):
            let count = Int.random(in: 0...3, using: &rng)
            guard let items else { return .array((0..<count).map { _ in jsonValue(depth: 1, using: &rng) }) }
            return .array((0..<count).map { _ in conformingValue(items, using: &rng) })
        case .object(let properties, let required, let additional):
            var object = DataObject()
            for (name, child) in properties where required.contains(name) || Bool.random(using: &rng) {
                object.append(name, conformingValue(child, using: &rng))
            }
            if additional {
                for extra in ["extra", "z/z"] where Bool.random(using: &rng) {
                    object.append(extra, Bool.random(using: &rng) ? .binary([1, 2]) : jsonValue(depth: 1, using: &rng))
                }
            }
            object.fields.shuffle(using: &rng)
            return .object(object)
        }
    }

    /// The same JSON value in another form: whole doubles as ints and back, members shuffled.
    static func reshaped(_ value: DataValue, using rng: inout SeededGenerator) -> DataValue {
        switch value {
        case .int(let i): return Bool.random(using: &rng) ? .double(Double(i)) : value
        case .double(let d): if let i = Int64(exactly: d), Bool.random(using: &rng) { return .int(i) } else { return value }
        case .array(let a): return .array(a.map { reshaped($0, using: &rng) })
        case .object(let o):
            return .object(DataObject(fields: o.fields.map { .init(key: $0.key, value: reshaped($0.value, using: &rng)) }.shuffled(using: &rng)))
        default: return value
        }
    }

    /// Paths into `value` where the spec constrains what is found (declared members and
    /// items), each with its JSON Pointer.
    static func constrainedPaths(_ spec: SchemaSpec, _ value: DataValue) -> [([PathStep], String)] {
        var result: [([PathStep], String)] = [([], "")]
        switch (spec, value) {
        case (.array(let items?), .array(let elements)):
            for (index, element) in elements.enumerated() {
                for (steps, pointer) in constrainedPaths(items, element) {
                    result.append(([.index(index)] + steps, "/\(index)" + pointer))
                }
            }
        case (.object(let properties, _, _), .object(let object)):
            for field in object.fields {
                guard let child = properties.first(where: { $0.name == field.key })?.spec else { continue }
                for (steps, pointer) in constrainedPaths(child, field.value) {
                    result.append(([.key(field.key)] + steps, "/" + JSONPointer.escape(field.key) + pointer))
                }
            }
        default: break
        }
        return result
    }

    static func replacing(_ value: DataValue, at steps: ArraySlice<PathStep>, with replacement: DataValue) -> DataValue {
        guard let step = steps.first else { return replacement }
        switch (step, value) {
        case (.index(let index), .array(var elements)):
            elements[index] = replacing(elements[index], at: steps.dropFirst(), with: replacement)
            return .array(elements)
        case (.key(let key), .object(var object)):
            if let index = object.fields.firstIndex(where: { $0.key == key }) {
                object.fields[index].value = replacing(object.fields[index].value, at: steps.dropFirst(), with: replacement)
            }
            return .object(object)
        default: return value
        }
    }
}

@Suite("Map schema properties")
struct MapSchemaPropertyTests {
    static let seeds: [UInt64] = Array(0..<400)

    @Test func canonicalJSONIsIndependentOfLayoutAndAFixedPoint() throws {
        for seed in Self.seeds {
            var rng = SeededGenerator(seed: seed)
            let spec = SchemaGen.spec(depth: 0, using: &rng)
            var layoutA = SeededGenerator(seed: seed &* 31 &+ 1)
            var layoutB = SeededGenerator(seed: seed &* 31 &+ 2)
            let a = try MapSchema.parse(json: SchemaGen.render(spec, using: &layoutA))
            let b = try MapSchema.parse(json: SchemaGen.render(spec, using: &layoutB))
            let again = try MapSchema.parse(json: a.canonicalJSON)
            #expect(again.canonicalJSON == a.canonicalJSON, "seed \(seed)")
            #expect(a.canonicalJSON == b.canonicalJSON, "seed \(seed)")
            #expect(a == b)
        }
    }

    @Test func generatedValuesSatisfyTheirGeneratedSchema() throws {
        for seed in Self.seeds {
            var rng = SeededGenerator(seed: seed)
            let spec = SchemaGen.spec(depth: 0, using: &rng)
            let schema = try MapSchema.parse(json: SchemaGen.render(spec, using: &rng))
            for _ in 0..<5 {
                let value = SchemaGen.conformingValue(spec, using: &rng)
                #expect(schema.validate(value) == nil, "seed \(seed): \(schema.canonicalJSON) vs \(value)")
            }
        }
    }

    @Test func aBrokenLeafIsReportedAtItsPointer() throws {
        for seed in Self.seeds {
            var rng = SeededGenerator(seed: seed)
            let spec = SchemaGen.spec(depth: 0, using: &rng)
            let schema = try MapSchema.parse(json: SchemaGen.render(spec, using: &rng))
            let value = SchemaGen.conformingValue(spec, using: &rng)
            let paths = SchemaGen.constrainedPaths(spec, value)
            let (steps, pointer) = paths[Int.random(in: 0..<paths.count, using: &rng)]
            // Binary matches no type and equals no enum value, so every constrained spot refuses it.
            let broken = SchemaGen.replacing(value, at: steps[...], with: .binary([0xFF]))
            let violation = schema.validate(broken)
            #expect(violation?.pointer == pointer, "seed \(seed): \(schema.canonicalJSON) vs \(broken)")
            #expect(schema.violations(of: broken).count == 1, "seed \(seed)")
        }
    }
}
