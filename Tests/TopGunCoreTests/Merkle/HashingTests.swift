import Testing
import TopGunCore

/// Vectors of protocol.md §11.1 to §11.4.
@Suite struct HashingTests {
    @Test(arguments: [
        ("", UInt32(2_166_136_261), 199), ("hello", 1_335_831_723, 95), ("key1", 927_623_783, 268),
        ("key1:100:0:test", 3_988_528_110, 245), ("user:alice", 927_278_352, 91), ("a", 3_826_002_220, 101),
        ("todo-1", 3_550_467_539, 63), ("user-1", 4_115_888_500, 120), ("é", 1_812_687_940, 105),
        ("😀", 3_409_036_472, 102), ("single", 2_133_018_345, 109), ("test", 2_949_673_445, 232),
    ])
    func fnv1aOverUTF16MatchesTheClient(input: String, hash: UInt32, partition: Int) {
        #expect(Hashing.fnv1a(input) == hash)
        #expect(PartitionFunction.clientPartition(forKey: input) == partition)
    }

    @Test func mixAndCombineVectors() {
        #expect(Hashing.mix(0) == 0)
        #expect(Hashing.mix(1) == 0x514e_28b7)
        #expect(Hashing.combine([]) == 0)
        #expect(Hashing.combine([100, 200]) == 0xbc1d_ab1c)
        #expect(Hashing.combine([Hashing.fnv1a("single")]) == 0xf004_7af6)
        #expect(Hashing.combine([Hashing.fnv1a("test"), 0]) == 0xd370_5a82)
        #expect(Hashing.combine([0, Hashing.fnv1a("test")]) == 0xd370_5a82)
        #expect(Hashing.combine([0xffff_ffff, 0xffff_ffff, 0xffff_ffff]) == 0x85d4_4dab)
    }

    @Test func merklePathIsEightLowerCaseHexDigits() {
        #expect(MerkleTree.path(of: "key1") == "374a6a67")
        #expect(MerkleTree.path(of: "a") == "e40c292c")
    }

    @Test func orMapEntryHashMatchesTheClientFormula() {
        let records = [
            ORMapRecord(value: "red", timestamp: Timestamp(millis: 1000, counter: 0, nodeId: "n1"), tag: "1000:0:n1"),
            ORMapRecord(value: ["b": 2, "a": 1], timestamp: Timestamp(millis: 1001, counter: 0, nodeId: "n2"), tag: "1001:0:n2", ttlMs: 5000),
        ]
        let text = #"key:tags|1000:0:n1:red:1000:0:n1|1001:0:n2:{"a":1,"b":2}:1001:0:n2:ttl=5000"#
        #expect(MerkleEntryHash.orMapString(key: "tags", records: records) == text)
        #expect(MerkleEntryHash.orMap(key: "tags", records: records) == 4_104_051_108)
        // Order of the records does not matter: the formula sorts by tag.
        #expect(MerkleEntryHash.orMap(key: "tags", records: records.reversed()) == 4_104_051_108)
    }

    @Test func orMapValueTextFiltersNestedKeysByTheTopLevelAllowList() {
        // JSON.stringify's replacer array applies at every depth: nested keys absent from
        // the top level vanish, and keys print in allow-list order.
        let value: DataValue = ["z": ["z": 1, "q": 2], "a": [1, ["a": true, "x": false]]]
        let record = ORMapRecord(value: value, timestamp: Timestamp(millis: 1, counter: 0, nodeId: "n"), tag: "t")
        #expect(MerkleEntryHash.orMapString(key: "k", records: [record]) == #"key:k|t:{"a":[1,{"a":true}],"z":{"z":1}}:1:0:n"#)
    }

    @Test(arguments: [
        (0.1, "0.1"), (1.5, "1.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"), (123456789012, "123456789012"),
        (1e-7, "1e-7"), (0.000001, "0.000001"), (-2.5, "-2.5"), (-0.0, "0"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (Double.leastNonzeroMagnitude, "5e-324"), (123.456, "123.456"), (9007199254740992, "9007199254740992"), (2.5e-5, "0.000025"),
    ])
    func javaScriptNumberText(value: Double, text: String) {
        #expect(JavaScriptText.number(value) == text)
    }
}
