import Testing
import TopGunCore

@Suite struct QueryChangeDiffTests {
    static func rows(_ pairs: [(String, Int64)]) -> [QueryRecord] { pairs.map { QueryRecord(key: $0.0, value: .int($0.1)) } }

    @Test func leavesComeFirstThenEntersThenUpdates() {
        let old = Self.rows([("a", 1), ("b", 2), ("c", 3)])
        let new = Self.rows([("b", 2), ("c", 30), ("d", 4)])
        #expect(QueryChange.diff(from: old, to: new) == [.leave(key: "a"), .enter(key: "d", value: .int(4)), .update(key: "c", value: .int(30))])
        #expect(QueryChange.diff(from: new, to: new).isEmpty)
        #expect(QueryChange.diff(from: [], to: old).count == 3)
    }

    /// Applying the diff to the old result gives the new one, for any two results.
    @Test(arguments: 0..<100) func applyingTheDiffGivesTheNewResult(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        func result() -> [QueryRecord] {
            var keys = Set<String>()
            for _ in 0..<Int.random(in: 0..<12, using: &random) { keys.insert("k\(Int.random(in: 0..<15, using: &random))") }
            return keys.map { QueryRecord(key: $0, value: .int(Int64.random(in: 0..<3, using: &random))) }
        }
        let old = result()
        let new = result()
        var held = Dictionary(uniqueKeysWithValues: old.map { ($0.key, $0.value) })
        var most = held.count
        for change in QueryChange.diff(from: old, to: new) {
            switch change {
            case .enter(let key, let value):
                #expect(held[key] == nil)
                held[key] = value
            case .update(let key, let value):
                #expect(held[key] != nil && held[key] != value)
                held[key] = value
            case .leave(let key):
                #expect(held[key] != nil)
                held[key] = nil
            }
            most = max(most, held.count)
        }
        #expect(held == Dictionary(uniqueKeysWithValues: new.map { ($0.key, $0.value) }))
        #expect(most <= max(old.count, new.count))
    }
}

struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
