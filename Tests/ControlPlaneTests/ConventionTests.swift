import Foundation
@testable import ControlPlane
import Metadata
import Testing
import TopGunCore

@Suite("RFC 3339")
struct RFC3339Tests {
    @Test(arguments: [
        ("2025-05-04T09:30:12Z", 1_746_351_012.0),
        ("2025-05-04t09:30:12z", 1_746_351_012.0),
        ("2025-05-04T11:30:12+02:00", 1_746_351_012.0),
        ("2025-05-04T09:30:12.5Z", 1_746_351_012.5),
        ("1970-01-01T00:00:00Z", 0.0),
        ("2024-02-29T00:00:00Z", 1_709_164_800.0),
        ("2016-12-31T23:59:60Z", 1_483_228_799.0),
    ])
    func parses(_ text: String, _ seconds: Double) {
        #expect(RFC3339.parse(text)?.timeIntervalSince1970 == seconds)
    }

    @Test(arguments: ["", "2025-05-04", "2025-05-04T09:30:12", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                      "2025-05-04T24:00:00Z", "2025-05-04T09:30:12+2:00", "2025-05-04 09:30:12Z", "2025-05-04T09:30:12.Z",
                      "2025-05-04T09:30:12Zjunk", "２０２５-05-04T09:30:12Z"])
    func refuses(_ text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func formatsInUTCWithAtMostSixFractionalDigits() {
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_746_351_012)) == "2025-05-04T09:30:12Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_746_351_012.25)) == "2025-05-04T09:30:12.25Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_746_351_012.000001)) == "2025-05-04T09:30:12.000001Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
    }

    @Test func roundTripsWholeMicroseconds() {
        for micros in stride(from: Int64(1_700_000_000_000_000), to: 1_700_000_000_000_000 + 5_000_000, by: 123_457) {
            let date = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            let text = RFC3339.format(date)
            #expect(RFC3339.parse(text).map { Int64(($0.timeIntervalSince1970 * 1_000_000).rounded()) } == micros, "\(text)")
        }
    }

    @Test func roundsToHoursAndDays() {
        let date = RFC3339.parse("2025-06-01T10:30:00Z")!
        #expect(RFC3339.format(RFC3339.floor(date, toMultipleOf: 3600)) == "2025-06-01T10:00:00Z")
        #expect(RFC3339.format(RFC3339.ceil(date, toMultipleOf: 3600)) == "2025-06-01T11:00:00Z")
        #expect(RFC3339.format(RFC3339.floor(date, toMultipleOf: 86_400)) == "2025-06-01T00:00:00Z")
        let boundary = RFC3339.parse("2025-06-01T10:00:00Z")!
        #expect(RFC3339.ceil(boundary, toMultipleOf: 3600) == boundary)
    }
}

@Suite("Page cursors")
struct PageCursorTests {
    @Test func roundTripWithTheSameFilters() throws {
        let position = ListPosition(time: Date(timeIntervalSince1970: 1_746_351_012.123456), id: "tn_abc")
        let cursor = PageCursor.encode(position, filters: "tenants|active")
        #expect(cursor.utf8.allSatisfy(AdminTokenValue.isBase64URLByte))
        let decoded = try PageCursor.decode(cursor, filters: "tenants|active")
        #expect(decoded?.id == "tn_abc")
        #expect(decoded.map { RFC3339.format($0.time) } == RFC3339.format(position.time))
    }

    @Test func otherFiltersOrGarbageAreRefused() throws {
        let cursor = PageCursor.encode(ListPosition(time: Date(), id: "x"), filters: "a")
        #expect(throws: APIError.self) { try PageCursor.decode(cursor, filters: "b") }
        for garbage in ["", "%%%", "bm90LWpzb24", String(repeating: "A", count: 600), "eyJ2IjoyfQ"] {
            #expect(throws: APIError.self) { try PageCursor.decode(garbage, filters: "a") }
        }
        #expect(try PageCursor.decode(nil, filters: "a") == nil)
    }
}

@Suite("Entity tags")
struct EntityTagTests {
    @Test func ifMatch() {
        #expect(EntityTag.ifMatchAllows(nil, current: "\"3\""))
        #expect(EntityTag.ifMatchAllows("*", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("*", current: nil))
        #expect(EntityTag.ifMatchAllows("\"2\", \"3\"", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("\"2\"", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("W/\"3\"", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("3", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("", current: "\"3\""))
        #expect(!EntityTag.ifMatchAllows("\"3\"", current: nil))
    }
}

@Suite("Request bodies")
struct BodyReaderTests {
    @Test func typesStayApart() throws {
        let value = try JSONValue.parse(Array(#"{"a":true,"b":1,"c":1.5,"d":"x","e":null,"f":[1],"g":{}}"#.utf8))
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members["a"] == .bool(true))
        #expect(members["b"] == .integer(1))
        #expect(members["c"] == .number(.double(1.5)))
        #expect(members["e"] == .null)
    }

    @Test func canonicalTextIgnoresOrderAndSpace() throws {
        let a = try JSONValue.parse(Array(#"{"b": [1, {"y":2,"x":"é\n"}], "a": null}"#.utf8))
        let b = try JSONValue.parse(Array(#"{"a":null,"b":[1,{"x":"é\n","y":2}]}"#.utf8))
        #expect(a.canonicalText == b.canonicalText)
        #expect(a.canonicalText == #"{"a":null,"b":[1,{"x":"é\n","y":2}]}"#)
    }

    @Test func invalidJSONAndUTF8AreValidationErrors() {
        for bytes: [UInt8] in [Array("{".utf8), [0xFF, 0xFE], Array("{\"a\": \"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)] {
            #expect(throws: APIError.self) { try JSONValue.parse(bytes) }
        }
    }

    @Test func everyProblemIsReportedWithItsPointer() throws {
        let body = try JSONValue.parse(Array(#"{"slug":"Bad!","n":"1","extra~/":1}"#.utf8))
        var reader = try BodyReader(body)
        _ = reader.string("slug", required: true, check: TextRules.slug)
        _ = reader.integer("n", in: 0...5)
        _ = reader.string("missing", required: true)
        do {
            try reader.finish()
            Issue.record("expected problems")
        } catch {
            let pointers = error.errors.compactMap { problem -> String? in
                if case .pointer(let pointer) = problem.location { return pointer }
                return nil
            }
            #expect(Set(pointers) == ["/slug", "/n", "/missing", "/extra~0~1"])
        }
    }

    @Test func labelsRefuseControlCharactersAndBlankText() {
        let check = TextRules.label(maximum: 5)
        #expect(check("ok") == nil)
        #expect(check("ééééé") == nil)
        #expect(check("éééééé") != nil)
        #expect(check(" \u{FEFF} ") != nil)
        #expect(check("a\u{0}") != nil)
        #expect(check("a\u{85}") != nil)
        #expect(check("") != nil)
    }

    @Test func identifiersAndMapNames() {
        #expect(TextRules.isIdentifier("tn_abcdefghijklmnopqrst", prefix: "tn_", count: 20))
        #expect(!TextRules.isIdentifier("tn_abcdefghijklmnopqrs1", prefix: "tn_", count: 20))
        #expect(!TextRules.isIdentifier("tn_ABCDEFGHIJKLMNOPQRST", prefix: "tn_", count: 20))
        #expect(TextRules.isMapName("orders"))
        #expect(TextRules.isMapName("_a.b:c~d-e"))
        #expect(!TextRules.isMapName("-orders"))
        #expect(!TextRules.isMapName("a b"))
        #expect(!TextRules.isMapName(String(repeating: "a", count: 257)))
    }
}

@Suite("Rate limiter")
struct RequestRateLimiterTests {
    @Test func aWindowAllowsTheQuotaThenRefusesUntilItResets() async {
        let limiter = RequestRateLimiter(quota: 3, window: 60)
        let start = Date(timeIntervalSince1970: 1_000)
        var remaining: [Int] = []
        for _ in 0..<3 {
            let decision = await limiter.charge("a", now: start)
            remaining.append(decision.remaining)
        }
        #expect(remaining == [2, 1, 0])
        let refused = await limiter.charge("a", now: start.addingTimeInterval(10))
        #expect(!refused.allowed)
        #expect(refused.resetSeconds == 50)
        let other = await limiter.charge("b", now: start.addingTimeInterval(10))
        #expect(other.allowed)
        let later = await limiter.charge("a", now: start.addingTimeInterval(60))
        #expect(later.allowed)
    }
}

@Suite("Admin token values")
struct AdminTokenValueTests {
    @Test func generatedValuesHaveTheContractsForm() {
        let value = AdminTokenValue.generate()
        #expect(AdminTokenValue.isWellFormed(value))
        #expect(value.utf8.count == 49)
        #expect(AdminTokenValue.displayPrefix(value).count == 10)
        #expect(AdminTokenValue.hash(value).count == 32)
        #expect(AdminTokenValue.generate() != value)
        #expect(!AdminTokenValue.isWellFormed("tgadm_short"))
    }
}
