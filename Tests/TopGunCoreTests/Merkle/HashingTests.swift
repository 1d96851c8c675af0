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

    /// The LWW entry hash is fed piece by piece (no joined string); it must equal the hash of
    /// the client's joined string `key:millis:counter:nodeId` for any parts.
    @Test(arguments: [
        ("key1", Int64(100), Int64(0), "test"), ("é😀", -5, Int64.max, "nöde"), ("", Int64.min, 0, ""),
        ("a:b", 1_732_000_000_000, 9, "c7b1a0de-5e55-4a1e-9f0e-000000000001"), ("x", 10, 1_000_000_000_000_000_000, "n"),
        ("\u{0}\u{7f}\u{80}", 9, 99, "\u{10FFFF}"),
    ])
    func lwwEntryHashEqualsTheHashOfTheJoinedString(key: String, millis: Int64, counter: Int64, nodeId: String) {
        let timestamp = Timestamp(millis: millis, counter: counter, nodeId: nodeId)
        #expect(MerkleEntryHash.lww(key: key, timestamp: timestamp) == Hashing.fnv1a("\(key):\(millis):\(counter):\(nodeId)"))
        #expect(MerkleEntryHash.lww(key: "key1", timestamp: Timestamp(millis: 100, counter: 0, nodeId: "test")) == 3_988_528_110)
    }

    @Test func piecewiseHashingMatchesOneString() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", ":", "-", "é", "ß", "😀", "中", "\u{7f}"]
        for _ in 0..<500 {
            let parts = (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                String((0..<Int.random(in: 0...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            let number = Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...63, using: &generator)
            var hasher = FNV1a()
            for part in parts { hasher.add(part) }
            hasher.add(decimal: number)
            var utf16 = FNV1a()
            for unit in (parts.joined() + String(number)).utf16 { utf16.add(unit: unit) }
            #expect(hasher.value == utf16.value)
            #expect(hasher.value == Hashing.fnv1a(parts.joined() + String(number)))
        }
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
