import Testing
import TopGunCore
@testable import Tenancy

/// The first violation's text, or nil when `value` conforms. A schema that does not parse
/// is a test bug, reported as such.
func firstViolation(_ schema: String, _ value: DataValue) -> String? {
    do {
        return try MapSchema.parse(json: schema).validate(value)?.description
    } catch {
        return "schema refused: \(error.problems)"
    }
}

@Suite("Map schema applied to values")
struct MapSchemaValidateTests {
    // MARK: type

    @Test(arguments: [
        ("null", DataValue.null, true), ("null", 0, false),
        ("boolean", true, true), ("boolean", 1, false), ("boolean", .null, false),
        ("integer", 5, true), ("integer", .uint(UInt64.max), true), ("integer", 2.0, true), ("integer", -0.0, true),
        ("integer", 2.5, false), ("integer", .double(.infinity), false), ("integer", .double(.nan), false), ("integer", "5", false),
        ("number", 5, true), ("number", 2.5, true), ("number", .uint(UInt64.max), true), ("number", true, false),
        ("string", "", true), ("string", 1, false), ("string", .binary([0x61]), false),
        ("array", [], true), ("array", [:], false), ("array", .binary([]), false),
        ("object", [:], true), ("object", [], false), ("object", .null, false),
    ] as [(String, DataValue, Bool)])
    func typeMatchesTheJSONEquivalent(type: String, value: DataValue, conforms: Bool) {
        let result = firstViolation(#"{"type":"\#(type)"}"#, value)
        #expect((result == nil) == conforms, "\(type) vs \(value): \(result ?? "ok")")
    }

    @Test func binaryMatchesNoType() {
        let all = #"{"type":["null","boolean","integer","number","string","array","object"]}"#
        #expect(firstViolation(all, .binary([1, 2, 3])) == "expected null or boolean or integer or number or string or array or object, got binary")
        // Without a type, nothing constrains it; string keywords do not apply to it.
        #expect(firstViolation(#"{"minLength":5,"pattern":"x"}"#, .binary([1])) == nil)
        #expect(firstViolation(#"{"enum":["AQ=="]}"#, .binary([1])) == "is not one of the enum values")
    }

    @Test func typeUnionsAndMessages() {
        #expect(firstViolation(#"{"type":["string","null"]}"#, .null) == nil)
        #expect(firstViolation(#"{"type":["string","null"]}"#, 3) == "expected null or string, got integer")
        #expect(firstViolation(#"{"type":"integer"}"#, 2.5) == "expected integer, got number")
        #expect(firstViolation(#"{"type":"string"}"#, [:]) == "expected string, got object")
    }

    // MARK: numbers

    @Test func minimumAndMaximumAreInclusive() {
        let schema = #"{"minimum":18,"maximum":150}"#
        #expect(firstViolation(schema, 18) == nil)
        #expect(firstViolation(schema, 150) == nil)
        #expect(firstViolation(schema, 150.0) == nil)
        #expect(firstViolation(schema, 17) == "17 is less than the minimum 18")
        #expect(firstViolation(schema, 17.999) == "17.999 is less than the minimum 18")
        #expect(firstViolation(schema, 151) == "151 is greater than the maximum 150")
        #expect(firstViolation(schema, .uint(UInt64.max)) == "18446744073709551615 is greater than the maximum 150")
        #expect(firstViolation(schema, "17") == nil)  // bounds apply to numbers only
    }

    @Test func boundsCompareExactlyBeyondDoublePrecision() {
        #expect(firstViolation(#"{"minimum":9007199254740993}"#, .int(9_007_199_254_740_992)) == "9007199254740992 is less than the minimum 9007199254740993")
        #expect(firstViolation(#"{"minimum":9007199254740993}"#, .int(9_007_199_254_740_993)) == nil)
        #expect(firstViolation(#"{"maximum":0.1}"#, .double(0.1)) == nil)
        #expect(firstViolation(#"{"maximum":-0}"#, .double(-0.0)) == nil)
        #expect(firstViolation(#"{"minimum":0}"#, .double(-0.0)) == nil)
        #expect(firstViolation(#"{"maximum":1e300}"#, .uint(UInt64.max)) == nil)
    }

    @Test func nonFiniteNumbersFailBounds() {
        #expect(firstViolation(#"{"minimum":0}"#, .double(.nan)) == "NaN cannot be compared with minimum or maximum")
        #expect(firstViolation(#"{"maximum":0}"#, .double(.infinity)) == "Infinity is greater than the maximum 0")
        #expect(firstViolation(#"{"minimum":0}"#, .double(-.infinity)) == "-Infinity is less than the minimum 0")
        #expect(firstViolation(#"{"minimum":0}"#, .double(.infinity)) == nil)
        #expect(firstViolation(#"{"type":"number"}"#, .double(.nan)) == nil)
    }

    // MARK: strings

    @Test func lengthsCountCodePoints() {
        let schema = #"{"minLength":2,"maxLength":3}"#
        #expect(firstViolation(schema, "ab") == nil)
        #expect(firstViolation(schema, "\u{1F600}\u{1F600}") == nil)  // 8 UTF-8 bytes, 4 UTF-16 units, 2 code points
        #expect(firstViolation(schema, "\u{1F600}") == "is 1 characters long, fewer than the minLength 2")
        #expect(firstViolation(schema, "e\u{301}") == nil)  // one grapheme, two code points
        #expect(firstViolation(schema, "e\u{301}e\u{301}") == "is 4 characters long, more than the maxLength 3")
        #expect(firstViolation(schema, "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}") == "is 5 characters long, more than the maxLength 3")
        #expect(firstViolation(schema, "\u{E9}\u{E9}\u{E9}") == nil)  // 6 bytes, 3 code points
        #expect(firstViolation(#"{"maxLength":0}"#, "") == nil)
        #expect(firstViolation(#"{"minLength":1}"#, "") == "is 0 characters long, fewer than the minLength 1")
    }

    @Test func patternSearchesUnanchored() {
        #expect(firstViolation(#"{"pattern":"b+"}"#, "abbc") == nil)
        #expect(firstViolation(#"{"pattern":"^b+$"}"#, "abbc") == "does not match the pattern ^b+$")
        #expect(firstViolation(#"{"pattern":"^(a+)+$"}"#, .string(String(repeating: "a", count: 64) + "!"))
            == "the pattern ^(a+)+$ is too expensive to evaluate on this value")
        #expect(firstViolation(#"{"pattern":"^\\d+$"}"#, 123) == nil)  // applies to strings only
    }

    // MARK: enum

    @Test func enumComparesAsJSON() {
        let schema = #"{"enum":[1,"open",null,[1,"a"],{"x":1,"y":[true]}]}"#
        #expect(firstViolation(schema, 1) == nil)
        #expect(firstViolation(schema, 1.0) == nil)
        #expect(firstViolation(schema, .uint(1)) == nil)
        #expect(firstViolation(schema, true) == "is not one of the enum values")  // true is not 1
        #expect(firstViolation(schema, "open") == nil)
        #expect(firstViolation(schema, "Open") == "is not one of the enum values")
        #expect(firstViolation(schema, .null) == nil)
        #expect(firstViolation(schema, [1.0, "a"]) == nil)
        #expect(firstViolation(schema, ["a", 1]) == "is not one of the enum values")  // array order matters
        #expect(firstViolation(schema, ["y": [true], "x": 1.0]) == nil)  // member order does not
        #expect(firstViolation(schema, ["x": 1, "y": [true], "z": 0]) == "is not one of the enum values")
        let duplicated = DataValue.object(DataObject(fields: [.init(key: "x", value: 1), .init(key: "x", value: 1)]))
        #expect(firstViolation(schema, duplicated) == "is not one of the enum values")
        #expect(firstViolation(#"{"enum":[9007199254740993]}"#, .double(9_007_199_254_740_992)) == "is not one of the enum values")
        #expect(firstViolation(#"{"enum":[0]}"#, .double(-0.0)) == nil)
        #expect(firstViolation(#"{"enum":[1.5]}"#, .double(.nan)) == "is not one of the enum values")
        #expect(firstViolation("{\"enum\":[\"\u{E9}\"]}", "e\u{301}") == "is not one of the enum values")
    }

    // MARK: objects and arrays

    @Test func requiredMembersMustBePresent() {
        let schema = #"{"type":"object","required":["customer","total"]}"#
        #expect(firstViolation(schema, ["customer": "x", "total": 1]) == nil)
        #expect(firstViolation(schema, ["customer": "x", "total": .null]) == nil)  // present, even if null
        #expect(firstViolation(schema, ["customer": "x"]) == "missing required member 'total'")
        #expect(firstViolation(#"{"required":["a"]}"#, "not an object") == nil)
    }

    @Test func additionalPropertiesFalseRefusesUndeclaredMembers() {
        let schema = #"{"properties":{"a":{}},"additionalProperties":false}"#
        #expect(firstViolation(schema, ["a": 1]) == nil)
        #expect(firstViolation(schema, ["a": 1, "b/c": 2]) == "/b~1c: is not allowed (additionalProperties is false)")
        #expect(firstViolation(#"{"additionalProperties":false}"#, [:]) == nil)
    }

    @Test func additionalPropertiesSchemaAppliesToUndeclaredMembersOnly() {
        let schema = #"{"properties":{"id":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#
        #expect(firstViolation(schema, ["id": "x", "n": 1, "m": 2]) == nil)
        #expect(firstViolation(schema, ["id": "x", "n": "one"]) == "/n: expected integer, got string")
        #expect(firstViolation(schema, ["id": 5]) == "/id: expected string, got integer")
    }

    @Test func nestedViolationsCarryTheirPointer() {
        let schema = #"""
            {"type":"object","properties":{
              "items":{"type":"array","items":{"type":"object","required":["name"],"properties":{
                "name":{"type":"string","minLength":1},
                "tags":{"items":{"pattern":"^[a-z]+$"}}}}},
              "a~b":{"properties":{"c/d":{"type":"null"}},"additionalProperties":{"type":"null"}}}}
            """#
        let item: DataValue = ["name": "ok", "tags": ["x", "y"]]
        #expect(firstViolation(schema, ["items": [item, item]]) == nil)
        #expect(firstViolation(schema, ["items": [item, item, ["name": ""]]]) == "/items/2/name: is 0 characters long, fewer than the minLength 1")
        #expect(firstViolation(schema, ["items": [item, ["tags": []]]]) == "/items/1: missing required member 'name'")
        #expect(firstViolation(schema, ["items": [["name": "n", "tags": ["ok", "NO"]]]]) == "/items/0/tags/1: does not match the pattern ^[a-z]+$")
        #expect(firstViolation(schema, ["a~b": ["c/d": 1]]) == "/a~0b/c~1d: expected null, got integer")
        #expect(firstViolation(schema, ["a~b": ["": 1]]) == "/a~0b/: expected null, got integer")  // the empty name
        #expect(firstViolation(schema, ["items": ["not an object"]]) == "/items/0: expected object, got string")
    }

    @Test func rootViolationsHaveTheEmptyPointer() throws {
        let violation = try MapSchema.parse(json: #"{"type":"object"}"#).validate(1)
        #expect(violation == SchemaViolation(pointer: "", message: "expected object, got integer"))
        #expect(violation?.description == "expected object, got integer")
        let nested = try MapSchema.parse(json: #"{"properties":{"age":{"minimum":18}}}"#).validate(["age": 17])
        #expect(nested?.pointer == "/age")
        #expect(nested?.description == "/age: 17 is less than the minimum 18")
    }

    @Test func violationsCollectUpToTheLimitInValueOrder() throws {
        let schema = try MapSchema.parse(json: #"{"required":["z"],"additionalProperties":{"type":"string"}}"#)
        let value: DataValue = .object(DataObject(fields: (0..<20).map { DataObject.Field(key: "k\($0)", value: .int(Int64($0))) }))
        let all = schema.violations(of: value)
        #expect(all.count == 10)
        #expect(all.first?.description == "missing required member 'z'")
        #expect(all[1].description == "/k0: expected string, got integer")
        #expect(all.last?.pointer == "/k8")
        #expect(schema.violations(of: value, limit: 3).map(\.pointer) == ["", "/k0", "/k1"])
        #expect(schema.violations(of: ["z": "ok"]) == [])
        #expect(schema.validate(value)?.description == "missing required member 'z'")
    }

    @Test func theEmptySchemaAcceptsEverything() throws {
        let schema = try MapSchema.parse(json: "{}")
        for value: DataValue in [.null, true, 1, 1.5, "s", .binary([0]), [1, [2]], ["a": ["b": .binary([])]]] {
            #expect(schema.validate(value) == nil)
        }
    }

    @Test func keywordsForOtherTypesDoNotApply() {
        let schema = #"{"minimum":5,"minLength":5,"pattern":"^x","items":{"type":"null"},"required":["a"],"properties":{"a":{"type":"null"}}}"#
        for value: DataValue in [.null, true, 10, "xxxxx", [.null], ["a": .null], .binary([])] {
            #expect(firstViolation(schema, value) == nil, "\(value)")
        }
    }
}
