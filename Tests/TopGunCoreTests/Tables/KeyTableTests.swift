import PropertyBased
import Testing
@testable import TopGunCore

@Suite struct KeyTableTests {
    enum Step: Sendable {
        case upsert(String, Int)
        case remove(String)
    }

    /// Keys of every kind the table treats differently: small (inline in `String`), up to
    /// 32 bytes (compared through their head), longer (compared through their string),
    /// longer ones sharing their first 32 bytes, and non-ASCII ones.
    static let keys: [String] = [
        "", "a", "b", "todo-1", "todo-2", "exactly-sixteen!", "c00001-0000000000001", "c00001-0000000000002",
        String(repeating: "x", count: 32), String(repeating: "x", count: 31) + "y",
        String(repeating: "p", count: 32) + "-one", String(repeating: "p", count: 32) + "-two", String(repeating: "p", count: 33),
        "ключ", "キー", "emoji-😀", "e\u{301}", "\u{e9}",
    ]

    static let step = zip(Gen.int(in: 0...9), Gen<String?>.element(of: keys), Gen.int(in: 0...1000))
        .map { kind, key, value -> Step in kind < 7 ? .upsert(key ?? "", value) : .remove(key ?? "") }

    /// Applies `steps` to a table and to a `Dictionary`, checking after each step that the
    /// two hold the same keys and values. `hash` chooses each key's hash (to force
    /// collisions); nil keeps `String`'s.
    static func checkAgainstDictionary(_ steps: [Step], hash: ((String) -> Int)?) {
        func key(_ string: String) -> HashedKey { hash.map { HashedKey(string, hash: $0(string)) } ?? HashedKey(string) }
        var table = KeyTable<Int>()
        // Keyed by bytes: the table, like the client, tells canonically equivalent strings apart.
        var model: [[UInt8]: Int] = [:]
        for step in steps {
            switch step {
            case .upsert(let string, let value):
                let k = key(string)
                let head = KeyHead(string)
                switch table.position(of: k, head: head) {
                case .found(let index): table[entry: index] = value
                case let absent: table.insert(k, head: head, value: value, at: absent)
                }
                model[Array(string.utf8)] = value
            case .remove(let string):
                #expect(table.removeValue(forKey: key(string)) == model.removeValue(forKey: Array(string.utf8)))
            }
            #expect(table.count == model.count)
            for string in keys {
                #expect(table[key(string)] == model[Array(string.utf8)], "key \(string.debugDescription)")
            }
            #expect(Dictionary(uniqueKeysWithValues: table.entries.map { (Array($0.key.string.utf8), $0.value) }) == model)
        }
    }

    @Test func behavesLikeADictionary() async {
        await propertyCheck(count: 300, input: Self.step.array(of: 0...60)) { steps in
            Self.checkAgainstDictionary(steps, hash: nil)
        }
    }

    @Test func behavesLikeADictionaryWhenEveryKeyCollides() async {
        await propertyCheck(count: 200, input: Self.step.array(of: 0...60)) { steps in
            Self.checkAgainstDictionary(steps, hash: { _ in 42 })
        }
    }

    @Test func behavesLikeADictionaryWithRunsOfNeighbouringHashes() async {
        // Hashes 0...3 put keys into neighbouring buckets, so runs overlap and removals
        // have to shift buckets of other homes back.
        await propertyCheck(count: 200, input: Self.step.array(of: 0...60)) { steps in
            Self.checkAgainstDictionary(steps, hash: { Int($0.utf8.count % 4) })
        }
    }

    @Test func growsAndShrinksThroughManyKeys() {
        var table = KeyTable<Int>()
        let keys = (0..<20_000).map { "key-\($0)-" + String(repeating: "z", count: $0 % 40) }
        for (index, key) in keys.enumerated() {
            let k = HashedKey(key)
            table.insert(k, head: KeyHead(key), value: index, at: table.position(of: k))
        }
        #expect(table.count == keys.count)
        for (index, key) in keys.enumerated() where index % 3 == 0 {
            #expect(table.removeValue(forKey: HashedKey(key)) == index)
        }
        for (index, key) in keys.enumerated() {
            #expect(table[HashedKey(key)] == (index % 3 == 0 ? nil : index))
        }
        #expect(table.count == keys.count - (keys.count + 2) / 3)
    }

    @Test func copiesAreIndependent() {
        var original = KeyTable<Int>()
        let key = HashedKey("shared")
        original.insert(key, head: KeyHead("shared"), value: 1, at: original.position(of: key))
        var copy = original
        if case .found(let index) = copy.position(of: key) { copy[entry: index] = 2 }
        let other = HashedKey("only-in-copy")
        copy.insert(other, head: KeyHead("only-in-copy"), value: 3, at: copy.position(of: other))
        #expect(original[key] == 1)
        #expect(original[other] == nil)
        #expect(copy[key] == 2)
        #expect(copy[other] == 3)
    }

    @Test func canonicallyEquivalentKeysStayApart() {
        var table = KeyTable<Int>()
        for (value, key) in ["\u{e9}", "e\u{301}"].enumerated() {
            let k = HashedKey(key)
            table.insert(k, head: KeyHead(key), value: value, at: table.position(of: k))
        }
        #expect(table.count == 2)
        #expect(table[HashedKey("\u{e9}")] == 0)
        #expect(table[HashedKey("e\u{301}")] == 1)
    }

    @Test func headsOfLongKeysDoNotDecideEquality() {
        let a = String(repeating: "k", count: 32) + "a"
        let b = String(repeating: "k", count: 32) + "b"
        #expect(KeyHead(a) == KeyHead(b))
        #expect(!KeyHead(a).isWholeKey)
        #expect(KeyHead("short") != KeyHead("short\u{0}"))
        var table = KeyTable<Int>()
        for (value, key) in [a, b].enumerated() {
            let k = HashedKey(key, hash: 7)
            table.insert(k, head: KeyHead(key), value: value, at: table.position(of: k))
        }
        #expect(table[HashedKey(a, hash: 7)] == 0)
        #expect(table[HashedKey(b, hash: 7)] == 1)
    }
}
