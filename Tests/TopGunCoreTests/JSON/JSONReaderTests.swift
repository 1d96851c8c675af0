import Foundation
import Testing
import TopGunCore

@Suite("JSONReader")
struct JSONReaderTests {
    private func parse(_ text: String) throws(JSONReader.Failure) -> JSONValue {
        try JSONReader().read(Array(text.utf8))
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
        #expect(throws: JSONReader.Failure.self) { try parse(input) }
    }

    @Test func duplicateMemberNamesAreRefused() {
        #expect(throws: JSONReader.Failure(.repeatedMember("a"), offset: 8)) {
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
            #expect(throws: JSONReader.Failure.self) { try JSONReader().read(bytes) }
        }
    }

    @Test func escapesDecodeAndLoneSurrogatesAreRefused() {
        #expect(canonical(#""\ud83d\ude00 \u00e9 \/ \b\f\n\r\t \u0001""#) == "\"\u{1F600} \u{E9} / \\b\\f\\n\\r\\t \\u0001\"")
        for text in [#""\ud83d""#, #""\ude00""#, #""\ud83d\u0041""#, #""\x41""#, #""\u12""#, "\"a\tb\""] {
            #expect(throws: JSONReader.Failure.self) { try parse(text) }
        }
    }

    @Test func syntaxErrorsAreRefused() {
        for text in ["", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "[1 2]", "{\"a\" 1}", "tru", "nul", "{} {}", "// x\n{}", "{a:1}", "\"abc"] {
            #expect(throws: JSONReader.Failure.self) { try parse(text) }
        }
    }

    @Test func deepNestingStopsWithoutOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONReader.Failure(.tooDeep(limit: 128), offset: 128)) { try parse(deep) }
        let fine = String(repeating: "[", count: JSONReader.Limits().maxDepth) + String(repeating: "]", count: JSONReader.Limits().maxDepth)
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

    @Test func membersKeepTheirOrderAndCompareByUTF8() throws {
        guard case .object(let object) = try parse("{\"b\":1,\"\u{E9}\":2,\"e\u{301}\":3}") else {
            Issue.record("not an object")
            return
        }
        #expect(object.names == ["b", "\u{E9}", "e\u{301}"])
        #expect(object["\u{E9}"] == .number(.int(2)))
        #expect(object["e\u{301}"] == .number(.int(3)))
        #expect(object == ["e\u{301}": .number(.int(3)), "b": .number(.int(1)), "\u{E9}": .number(.int(2))], "equal in any order")
    }

    @Test func numbersKeepHowTheyWereWritten() throws {
        #expect(try parse("2") == .number(.int(2)))
        #expect(try parse("2.0") == .number(.double(2)))
        #expect(try parse("18446744073709551615") == .number(.uint(.max)))
        #expect(try parse("2.0").int64Value == 2)
        #expect(try parse("2.5").int64Value == nil)
    }

    @Test func sizeIsBounded() {
        #expect(throws: JSONReader.Failure(.tooLarge(limit: 4), offset: 0)) {
            try JSONReader(limits: JSONReader.Limits(maxBytes: 4)).read("12345")
        }
    }

    @Test func encodesBackAsTheSameJSON() throws {
        let text = #"{"a":[1,2.5,"x",null,true],"b":{"c":18446744073709551615}}"#
        let value = try parse(text)
        let encoded = Array(try JSONEncoder().encode(value))
        #expect(try JSONReader().read(encoded) == value)
    }
}
