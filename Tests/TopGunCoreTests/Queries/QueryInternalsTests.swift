import Testing
@testable import TopGunCore

@Suite struct QueryInternalsTests {
    @Test func base64URLMatchesRFC4648Vectors() {
        let vectors: [(String, String)] = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
    }

    @Test func base64URLRejectsPaddingForeignCharactersAndStrayBits() {
        #expect(Base64URL.decode("Zg==") == nil)
        #expect(Base64URL.decode("Zm+v") == nil)
        #expect(Base64URL.decode("Z") == nil)
        #expect(Base64URL.decode("Zh") == nil)
    }

    @Test func compactCodecRoundTripsEveryKind() {
        let value: DataValue = [
            "n": .null, "t": true, "f": false, "i": .int(-5), "u": .uint(UInt64.max), "d": 1.25,
            "s": "héllo", "b": .binary([0, 255]), "a": [1, "x", [.null]], "o": ["z": 1, "a": 2],
        ]
        var writer = CompactValueCodec.Writer()
        CompactValueCodec.encode(value, into: &writer, canonical: false)
        var reader = CompactValueCodec.Reader(writer.bytes)
        let decoded = CompactValueCodec.decode(from: &reader)
        #expect(decoded == value)
        #expect(decoded?.objectValue?.keys == value.objectValue?.keys)
        #expect(reader.isAtEnd)
    }

    @Test func compactCodecRejectsHostileLengthsAndDepth() {
        var huge = CompactValueCodec.Reader([8, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        #expect(CompactValueCodec.decode(from: &huge) == nil)
        var deep = CompactValueCodec.Reader(Array(repeating: 8, count: 100).flatMap { [$0, 1] } + [0])
        #expect(CompactValueCodec.decode(from: &deep) == nil)
        var badUTF8 = CompactValueCodec.Reader([6, 1, 0xFF])
        #expect(CompactValueCodec.decode(from: &badUTF8) == nil)
        var badTag = CompactValueCodec.Reader([42])
        #expect(CompactValueCodec.decode(from: &badTag) == nil)
    }

    @Test func canonicalBytesIgnoreKeyOrderAndNumberSpelling() {
        #expect(CompactValueCodec.canonicalBytes(["a": 1, "b": 2.0]) == CompactValueCodec.canonicalBytes(["b": 2, "a": 1.0]))
        #expect(CompactValueCodec.canonicalBytes(["a": 1]) != CompactValueCodec.canonicalBytes(["a": 1.5]))
    }

    @Test func filterHashDependsOnFilterAndGroupingOnly() {
        let base = Query(where: ["a": 1], sort: SortOrder([SortField("x")]), limit: 5, cursor: "c")
        var sameFilter = base
        sameFilter.limit = 50
        sameFilter.cursor = nil
        sameFilter.sort = nil
        #expect(QueryCursor.filterHash(of: base) == QueryCursor.filterHash(of: sameFilter))
        var otherFilter = base
        otherFilter.where = ["a": 2]
        #expect(QueryCursor.filterHash(of: base) != QueryCursor.filterHash(of: otherFilter))
        var grouped = base
        grouped.groupBy = ["a"]
        #expect(QueryCursor.filterHash(of: base) != QueryCursor.filterHash(of: grouped))
        #expect(QueryCursor.sortHash(of: base) != QueryCursor.sortHash(of: sameFilter))
    }

    @Test func cursorRoundTripsThroughItsEncoding() {
        let cursor = QueryCursor(
            position: RecordPosition(sortValues: [1.5, nil, "x"], key: "k/1"), filterHash: 7, sortHash: .max,
            issuedAtMillis: -3)
        #expect(QueryCursor(encoded: cursor.encoded) == cursor)
    }

    @Test func stableHashIsFNV1a64() {
        #expect(StableHash.fnv1a64([]) == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
    }

    @Test func likePatternHandlesRepeatedWildcards() {
        #expect(LikePattern("%a%a%a%").matches("banana"))
        #expect(!LikePattern("%a%a%a%a%").matches("banana"))
        #expect(LikePattern("%").matches(""))
        #expect(!LikePattern("_").matches(""))
    }

    @Test func sortCompareIsTotalOverNaN() {
        #expect(ValueOrdering.sortCompare(.double(.nan), .double(.nan)) == .equal)
        #expect(ValueOrdering.sortCompare(.double(.nan), .int(Int64.min)) == .less)
        #expect(ValueOrdering.sortCompare(.double(-.infinity), .double(.nan)) == .greater)
    }
}
