/// The simulation's only source of randomness (SplitMix64): seeded, so that a seed replays
/// exactly. Swift's `SystemRandomNumberGenerator` and hashing are randomized per process,
/// so nothing in the simulation may use them to decide anything.
struct SimRandom: RandomNumberGenerator {
    private var source: SplitMix64

    init(seed: UInt64) { source = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { source.next() }

    /// True with probability `p` (0...1).
    mutating func chance(_ p: Double) -> Bool {
        p > 0 && Double(next() >> 11) / Double(1 << 53) < p
    }

    /// A uniform integer in `range` (`Int.random(in:using:)` is seeded by us, so deterministic).
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    mutating func int64(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &self) }

    /// One element of a non-empty array (callers sort sets first).
    mutating func pick<T>(_ elements: [T]) -> T { elements[int(0...(elements.count - 1))] }

    /// An independent generator for one concern (the network, the faults, the clients), so
    /// that adding a draw in one place does not shift every other decision of the seed.
    mutating func split() -> SimRandom { SimRandom(seed: next()) }
}
