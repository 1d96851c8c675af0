import Testing
@testable import Tenancy

@Suite("Schema JSON reader")
struct SchemaJSONParserTests {
    private func parse(_ text: String) throws(SchemaJSONParser.Failure) -> SchemaJSON {
        try SchemaJSONParser.parse(Array(text.utf8))
    }

    private func canonical(_ text: String) -> String? {
        try? parse(text).canonicalText
    }

    @Test func booleansStayApartFromNumbers() throws {
        #expect(canonical("[true,false,1,0]") == "[true,false,1,0]")
        guard case .array(let values) = try parse("[true, 1]") else { Issue.record("not an array"); return }
        guard case .bool(true) = values[0], case .number(.int(1)) = values[1] else {
            Issue.record("bool and number confused: \(values)")
            return
        }
    }

    @Test(arguments: [
        ("9007199254740993", "9007199254740993"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("18446744073709551615", "18446744073709551615"),
        ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("2.0", "2"),
        ("1e3", "1000"),
        ("1E+2", "100"),
        ("0.1", "0.1"),
        ("-1.5e-7", "-1.5e-07"),
        ("1e-400", "0"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ])
    func numbersReadExactlyAndPrintInShortestForm(input: String, expected: String) {
        #expect(canonical(input) == expected)
    }

    @Test(arguments: [
        "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "01", "-", "1.", ".5", "1e", "+1", "0x10", "1_000",
    ])
    func numbersOutsideJSONAreRefused(input: String) {
        #expect(throws: SchemaJSONParser.Failure.self) { try parse(input) }
    }

    @Test func duplicateMemberNamesAreRefused() {
        #expect(throws: SchemaJSONParser.Failure.duplicateMember("a", offset: 8)) {
            try parse(#"{"a":1, "a":2}"#)
        }
        // Canonically equivalent but different code points: distinct names in JSON.
        #expect(canonical("{\"\u{E9}\":1,\"e\u{301}\":2}") != nil)
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [
            [0x22, 0xFF, 0x22],  // not UTF-8 at all
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate
            [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
            [0xEF, 0xBB, 0xBF, 0x7B, 0x7D],  // byte order mark before {}
        ] {
            #expect(throws: SchemaJSONParser.Failure.self) { try SchemaJSONParser.parse(bytes) }
        }
    }

    @Test func escapesDecodeAndLoneSurrogatesAreRefused() {
        #expect(canonical(#""\ud83d\ude00 \u00e9 \/ \b\f\n\r\t \u0001""#) == "\"\u{1F600} \u{E9} / \\b\\f\\n\\r\\t \\u0001\"")
        for text in [#""\ud83d""#, #""\ude00""#, #""\ud83d\u0041""#, #""\x41""#, #""\u12""#, "\"a\tb\""] {
            #expect(throws: SchemaJSONParser.Failure.self) { try parse(text) }
        }
    }

    @Test func syntaxErrorsAreRefused() {
        for text in ["", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "[1 2]", "{\"a\" 1}", "tru", "nul", "{} {}", "// x\n{}", "{a:1}", "\"abc"] {
            #expect(throws: SchemaJSONParser.Failure.self) { try parse(text) }
        }
    }

    @Test func deepNestingStopsWithoutOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: SchemaJSONParser.Failure.tooDeep) { try parse(deep) }
        let fine = String(repeating: "[", count: SchemaJSONParser.maxDepth) + String(repeating: "]", count: SchemaJSONParser.maxDepth)
        #expect(canonical(fine) == fine)
    }

    @Test func whitespaceAndMemberOrderDoNotChangeTheCanonicalText() {
        let a = canonical(" { \"b\" : [ 1 , 2.50 ] ,\n\t\"a\" : { \"z\" : null , \"y\" : true } } ")
        let b = canonical(#"{"a":{"y":true,"z":null},"b":[1,2.5]}"#)
        #expect(a == #"{"a":{"y":true,"z":null},"b":[1,2.5]}"#)
        #expect(a == b)
    }

    @Test func keysSortByCodePoint() {
        // "Z" < "a" < "é" < "😀" in code point order; U+FF5E sorts before U+1F600 (UTF-16 order would not).
        #expect(canonical("{\"\u{1F600}\":1,\"\u{FF5E}\":2,\"\u{E9}\":3,\"a\":4,\"Z\":5}") == "{\"Z\":5,\"a\":4,\"\u{E9}\":3,\"\u{FF5E}\":2,\"\u{1F600}\":1}")
    }

    @Test func numberComparisonIsExact() {
        #expect(SchemaNumber.compare(.int(9_007_199_254_740_993), .double(9_007_199_254_740_992)) == 1)
        #expect(SchemaNumber.compare(.int(3), .double(3.5)) == -1)
        #expect(SchemaNumber.compare(.int(-3), .double(-2.5)) == -1)
        #expect(SchemaNumber.compare(.int(-2), .double(-2.5)) == 1)
        #expect(SchemaNumber.compare(.uint(UInt64.max), .double(1.8446744073709552e19)) == -1)
        #expect(SchemaNumber.compare(.int(Int64.max), .double(1e300)) == -1)
        #expect(SchemaNumber.compare(.int(Int64.min), .double(-1e300)) == 1)
        #expect(SchemaNumber.compare(.int(Int64.max), .uint(UInt64(Int64.max) + 1)) == -1)
    }
}
