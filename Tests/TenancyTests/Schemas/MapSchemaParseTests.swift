import Testing
@testable import Tenancy

/// The problems a put reports, or [] when the schema is accepted.
func schemaProblems(_ json: String) -> [SchemaProblem] {
    do {
        _ = try MapSchema.parse(json: json)
        return []
    } catch {
        return error.problems
    }
}

func problem(_ pointer: String, _ message: String) -> SchemaProblem {
    SchemaProblem(pointer: pointer, message: message)
}

@Suite("Map schema put-time checks")
struct MapSchemaParseTests {
    @Test func theContractExampleIsAccepted() throws {
        let schema = try MapSchema.parse(json: """
            {
              "type": "object",
              "required": ["customer", "total"],
              "properties": {
                "customer": {"type": "string", "minLength": 1, "maxLength": 200},
                "total": {"type": "number", "minimum": 0},
                "status": {"enum": ["open", "paid", "shipped"]},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}}
              },
              "additionalProperties": false,
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "title": "Order",
              "description": "An order as the shop writes it."
            }
            """)
        #expect(schema.canonicalJSON.hasPrefix(#"{"$schema":"https://json-schema.org/draft/2020-12/schema","additionalProperties":false,"description":"#))
    }

    @Test(arguments: [
        #"{}"#,
        #"{"type":"null"}"#, #"{"type":"boolean"}"#, #"{"type":"integer"}"#, #"{"type":"number"}"#,
        #"{"type":"string"}"#, #"{"type":"array"}"#, #"{"type":"object"}"#,
        #"{"type":["string","null"]}"#,
        #"{"type":["null","boolean","integer","number","string","array","object"]}"#,
        #"{"properties":{}}"#,
        #"{"properties":{"a":{},"b":{"type":"string"}}}"#,
        #"{"required":[]}"#, #"{"required":["a","b"]}"#,
        #"{"enum":[1]}"#, #"{"enum":[null,true,1.5,"x",[1],{"a":{}}]}"#,
        #"{"minimum":-1.5,"maximum":1e300}"#, #"{"minimum":3,"maximum":3}"#,
        #"{"minLength":0,"maxLength":2097152}"#, #"{"minLength":2.0}"#, #"{"minLength":5,"maxLength":5}"#,
        #"{"pattern":"^a"}"#,
        #"{"items":{"type":"integer"}}"#,
        #"{"additionalProperties":true}"#, #"{"additionalProperties":false}"#, #"{"additionalProperties":{"type":"string"}}"#,
        #"{"title":"","description":"","$schema":"x"}"#,
    ])
    func everyKeywordIsAccepted(json: String) {
        #expect(schemaProblems(json) == [])
    }

    @Test(arguments: [
        (#"{"format":"email"}"#, [problem("/format", "keyword 'format' is not supported")]),
        (##"{"$ref":"#"}"##, [problem("/$ref", "keyword '$ref' is not supported")]),
        (#"{"exclusiveMinimum":1,"oneOf":[]}"#, [
            problem("/exclusiveMinimum", "keyword 'exclusiveMinimum' is not supported"),
            problem("/oneOf", "keyword 'oneOf' is not supported"),
        ]),
        (#"{"type":"float"}"#, [problem("/type", "unknown type 'float'; expected one of null, boolean, integer, number, string, array, object")]),
        (#"{"type":[]}"#, [problem("/type", "type must list at least one type")]),
        (#"{"type":["string","string"]}"#, [problem("/type/1", "type 'string' is listed twice")]),
        (#"{"type":["string",1]}"#, [problem("/type/1", "a type must be a string, not a number")]),
        (#"{"type":1}"#, [problem("/type", "type must be a string or an array of strings, not a number")]),
        (#"{"properties":[]}"#, [problem("/properties", "properties must be an object, not an array")]),
        (#"{"properties":{"a":"string"}}"#, [problem("/properties/a", "a schema must be an object, not a string")]),
        (#"{"properties":{"a":true}}"#, [problem("/properties/a", "a schema must be an object, not a boolean")]),
        (#"{"properties":{"":{}}}"#, [problem("/properties/", "a property name must be 1 to 256 characters")]),
        (#"{"required":"a"}"#, [problem("/required", "required must be an array of strings, not a string")]),
        (#"{"required":["a",2,"a",""]}"#, [
            problem("/required/1", "a required name must be a string, not a number"),
            problem("/required/2", "'a' is listed twice"),
            problem("/required/3", "a required name must be 1 to 256 characters"),
        ]),
        (#"{"enum":[]}"#, [problem("/enum", "enum must list at least one value")]),
        (#"{"enum":"a"}"#, [problem("/enum", "enum must be an array, not a string")]),
        (#"{"minimum":"1"}"#, [problem("/minimum", "minimum must be a number, not a string")]),
        (#"{"maximum":null}"#, [problem("/maximum", "maximum must be a number, not null")]),
        (#"{"minimum":10,"maximum":5}"#, [problem("/minimum", "minimum (10) is greater than maximum (5)")]),
        (#"{"minimum":0.5,"maximum":0.25}"#, [problem("/minimum", "minimum (0.5) is greater than maximum (0.25)")]),
        (#"{"minLength":-1}"#, [problem("/minLength", "minLength must be an integer from 0 to 2097152")]),
        (#"{"maxLength":1.5}"#, [problem("/maxLength", "maxLength must be an integer from 0 to 2097152")]),
        (#"{"maxLength":2097153}"#, [problem("/maxLength", "maxLength must be an integer from 0 to 2097152")]),
        (#"{"maxLength":true}"#, [problem("/maxLength", "maxLength must be an integer from 0 to 2097152")]),
        (#"{"minLength":3,"maxLength":2}"#, [problem("/minLength", "minLength (3) is greater than maxLength (2)")]),
        (#"{"pattern":""}"#, [problem("/pattern", "pattern must be 1 to 1024 characters")]),
        (#"{"pattern":1}"#, [problem("/pattern", "pattern must be a string, not a number")]),
        (#"{"pattern":"(?<=a)b"}"#, [problem("/pattern", "pattern does not compile: look-behind assertions are not supported")]),
        (#"{"pattern":"(?<!a)b"}"#, [problem("/pattern", "pattern does not compile: look-behind assertions are not supported")]),
        (#"{"pattern":"(a)\\1"}"#, [problem("/pattern", "pattern does not compile: back-references are not supported")]),
        (#"{"pattern":"(?<x>a)\\k<x>"}"#, [problem("/pattern", "pattern does not compile: back-references are not supported")]),
        (#"{"pattern":"[a-"}"#, [problem("/pattern", "pattern does not compile: unterminated character class")]),
        (#"{"items":[{}]}"#, [problem("/items", "a schema must be an object, not an array")]),
        (#"{"additionalProperties":"no"}"#, [problem("/additionalProperties", "additionalProperties must be a boolean or a schema (an object), not a string")]),
        (#"{"additionalProperties":{"type":"x"}}"#, [problem("/additionalProperties/type", "unknown type 'x'; expected one of null, boolean, integer, number, string, array, object")]),
        (#"{"title":1}"#, [problem("/title", "title must be a string, not a number")]),
        (#"{"$schema":false}"#, [problem("/$schema", "$schema must be a string, not a boolean")]),
        (#"[]"#, [problem("", "a schema must be an object, not an array")]),
        (#"true"#, [problem("", "a schema must be an object, not a boolean")]),
    ] as [(String, [SchemaProblem])])
    func everyKeywordIsRefusedWhenMisused(json: String, expected: [SchemaProblem]) {
        #expect(schemaProblems(json) == expected)
    }

    @Test func annotationLengthsCountCodePoints() {
        let emojiTitle = String(repeating: "\u{1F600}", count: 200)
        #expect(schemaProblems(#"{"title":"\#(emojiTitle)"}"#) == [])
        #expect(schemaProblems(#"{"title":"\#(emojiTitle)x"}"#) == [problem("/title", "title must be at most 200 characters")])
        #expect(schemaProblems(#"{"description":"\#(String(repeating: "d", count: 2001))"}"#) == [problem("/description", "description must be at most 2000 characters")])
        #expect(schemaProblems(#"{"$schema":"\#(String(repeating: "s", count: 201))"}"#) == [problem("/$schema", "$schema must be at most 200 characters")])
        #expect(schemaProblems(#"{"pattern":"\#(String(repeating: "\u{E9}", count: 1024))"}"#) == [])
        #expect(schemaProblems(#"{"pattern":"\#(String(repeating: "a", count: 1025))"}"#) == [problem("/pattern", "pattern must be 1 to 1024 characters")])
        let longName = String(repeating: "n", count: 257)
        #expect(schemaProblems(#"{"properties":{"\#(longName)":{}}}"#) == [problem("/properties/\(longName)", "a property name must be 1 to 256 characters")])
        #expect(schemaProblems(#"{"required":["\#(longName)"]}"#) == [problem("/required/0", "a required name must be 1 to 256 characters")])
    }

    @Test func countLimitsAreEnforced() {
        let properties = (0...1000).map { #""p\#($0)":{}"# }.joined(separator: ",")
        #expect(schemaProblems(#"{"properties":{\#(properties)}}"#) == [problem("/properties", "properties has 1001 members; at most 1000")])
        let required = (0...1000).map { #""r\#($0)""# }.joined(separator: ",")
        #expect(schemaProblems(#"{"required":[\#(required)]}"#) == [problem("/required", "required lists 1001 names; at most 1000")])
        let values = (0...1000).map(String.init).joined(separator: ",")
        #expect(schemaProblems(#"{"enum":[\#(values)]}"#) == [problem("/enum", "enum lists 1001 values; at most 1000")])
        #expect(schemaProblems(#"{"type":["null","boolean","integer","number","string","array","object","null"]}"#) == [
            problem("/type", "type must list at most 7 types"),
            problem("/type/7", "type 'null' is listed twice"),
        ])
    }

    @Test func pointersEscapeTildeAndSlash() {
        #expect(schemaProblems(#"{"properties":{"a/b":{"minimum":"x"},"m~n":{"format":1},"~1":{"type":2}}}"#) == [
            problem("/properties/a~1b/minimum", "minimum must be a number, not a string"),
            problem("/properties/m~0n/format", "keyword 'format' is not supported"),
            problem("/properties/~01/type", "type must be a string or an array of strings, not a number"),
        ])
        #expect(schemaProblems(#"{"a/~b":1}"#) == [problem("/a~1~0b", "keyword 'a/~b' is not supported")])
        #expect(JSONPointer.escape("~/~") == "~0~1~0")
        #expect(JSONPointer.appending("/schema", "x/y") == "/schema/x~1y")
    }

    @Test func everyProblemIsReportedInDocumentOrderNotJustTheFirst() {
        let json = #"""
            {"type":"object","properties":{
              "total":{"type":"number","minimum":10,"maximum":5},
              "customer":{"type":"string","format":"email"},
              "tags":{"items":{"pattern":"(?<=x)","minLength":"1"}}
            },"additionalProperties":{"enum":[]}}
            """#
        #expect(schemaProblems(json) == [
            problem("/properties/total/minimum", "minimum (10) is greater than maximum (5)"),
            problem("/properties/customer/format", "keyword 'format' is not supported"),
            problem("/properties/tags/items/pattern", "pattern does not compile: look-behind assertions are not supported"),
            problem("/properties/tags/items/minLength", "minLength must be an integer from 0 to 2097152"),
            problem("/additionalProperties/enum", "enum must list at least one value"),
        ])
    }

    @Test func problemsStopAtOneHundred() {
        let members = (0..<150).map { #""k\#($0)":1"# }.joined(separator: ",")
        let problems = schemaProblems("{\(members)}")
        #expect(problems.count == MapSchema.maxProblems)
        #expect(problems.first == problem("/k0", "keyword 'k0' is not supported"))
        #expect(problems.last == problem("/k99", "keyword 'k99' is not supported"))
    }

    /// `{"items": {"items": ... {}}}` with `levels` schema levels.
    private func nested(_ levels: Int) -> String {
        String(repeating: #"{"items":"#, count: levels - 1) + "{}" + String(repeating: "}", count: levels - 1)
    }

    @Test func nestingIsLimitedToThirtyTwoLevels() {
        #expect(schemaProblems(nested(32)) == [])
        let pointer = String(repeating: "/items", count: 32)
        #expect(schemaProblems(nested(33)) == [problem(pointer, "the schema nests deeper than 32 levels")])
        // Through properties and additionalProperties too: each schema is one level.
        var json = "{}"
        for level in 0..<32 { json = level % 2 == 0 ? #"{"properties":{"p":\#(json)}}"# : #"{"additionalProperties":\#(json)}"# }
        #expect(schemaProblems(json).first?.message == "the schema nests deeper than 32 levels")
        // Far deeper text stops in the reader, without recursion to match.
        #expect(schemaProblems(nested(10_000)) == [problem("", "the schema nests deeper than 32 levels")])
    }

    @Test func schemasOverSixtyFourKilobytesAreRefused() {
        // Padding with white space does not count: the limit is on the JSON itself.
        let padded = "{" + String(repeating: " ", count: 100_000) + #""title":"x"}"#
        #expect(schemaProblems(padded) == [])
        let values = (0..<1000).map { _ in "\"" + String(repeating: "v", count: 70) + "\"" }.joined(separator: ",")
        let large = #"{"enum":[\#(values)]}"#
        #expect(schemaProblems(large).first?.message.hasPrefix("the schema is ") == true)
        #expect(schemaProblems(large).first?.pointer == "")
        let huge = [UInt8](repeating: 0x20, count: MapSchema.maxInputBytes + 1)
        #expect(throws: MapSchemaError.self) { try MapSchema.parse(json: huge) }
    }

    @Test func textThatIsNotJSONIsToldApartFromAnInvalidSchema() {
        #expect(throws: MapSchemaError.notJSON(message: "expected a member name", offset: 1)) { try MapSchema.parse(json: "{x}") }
        #expect(throws: MapSchemaError.notJSON(message: "duplicate member name \"type\"", offset: 17)) {
            try MapSchema.parse(json: #"{"type":"string","type":"number"}"#)
        }
        #expect(throws: MapSchemaError.notJSON(message: "number out of range", offset: 11)) { try MapSchema.parse(json: #"{"minimum":1e400}"#) }
        #expect(throws: MapSchemaError.self) { try MapSchema.parse(json: #"{"minimum":NaN}"#) }
        #expect(throws: MapSchemaError.self) { try MapSchema.parse(json: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
        #expect(MapSchemaError.notJSON(message: "unexpected character", offset: 1).problems == [
            problem("", "not valid JSON: unexpected character at byte 1"),
        ])
    }

    // MARK: canonicalJSON

    @Test func canonicalJSONIgnoresWhitespaceMemberOrderAndNumberSpelling() throws {
        let a = try MapSchema.parse(json: """
            { "type" : "object",
              "properties" : { "b" : { "maximum" : 1.0E2 }, "a" : { "type" : [ "string" , "null" ] } },
              "required" : [ "b", "a" ] }
            """)
        let b = try MapSchema.parse(json: #"{"required":["b","a"],"properties":{"a":{"type":["string","null"]},"b":{"maximum":100}},"type":"object"}"#)
        #expect(a.canonicalJSON == #"{"properties":{"a":{"type":["string","null"]},"b":{"maximum":100}},"required":["b","a"],"type":"object"}"#)
        #expect(a.canonicalJSON == b.canonicalJSON)
        #expect(a == b)
        // Array order is meaningful and kept.
        let c = try MapSchema.parse(json: #"{"required":["a","b"]}"#)
        let d = try MapSchema.parse(json: #"{"required":["b","a"]}"#)
        #expect(c != d)
    }

    @Test func canonicalJSONIsAFixedPoint() throws {
        let texts = [
            #"{"pattern":"^\\d+\"\u0007\u00e9$","enum":[{"z":1,"a":[true,null,-0.0,1e-7]}],"title":"tab\there"}"#,
            #"{"properties":{"~/":{"additionalProperties":{"items":{}}}}}"#,
        ]
        for text in texts {
            let once = try MapSchema.parse(json: text).canonicalJSON
            let twice = try MapSchema.parse(json: once).canonicalJSON
            #expect(once == twice)
        }
        #expect(try MapSchema.parse(json: texts[0]).canonicalJSON
            == #"{"enum":[{"a":[true,null,0,1e-07],"z":1}],"pattern":"^\\d+\"\u0007é$","title":"tab\there"}"#)
    }
}
