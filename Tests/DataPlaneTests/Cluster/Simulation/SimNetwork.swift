/// The simulated network between nodes and between each node and the database: per message a
/// random delay (so messages reorder), and while chaos is on, drops and duplicates; links
/// cut by isolation faults deliver nothing until healed.
struct SimNetwork {
    struct Chaos {
        var dropRate = 0.02
        var duplicateRate = 0.02
        /// Chance that a message is slow (a delay of up to `slowDelay`): reorders widely.
        var slowRate = 0.05
        var slowDelay: ClosedRange<Int64> = 20...400
        var baseDelay: ClosedRange<Int64> = 1...6

        static let calm = Chaos(dropRate: 0, duplicateRate: 0, slowRate: 0, slowDelay: 1...1, baseDelay: 1...3)
    }

    var chaos: Chaos
    private var random: SimRandom
    /// Cut node-to-node links, as (lower index, higher index).
    private(set) var cutLinks = Set<Pair>()
    /// When each cut link was cut.
    private(set) var cutAt: [Pair: Int64] = [:]
    /// Nodes cut off from the database.
    private(set) var cutFromDatabase = Set<Int>()

    struct Pair: Hashable, Comparable {
        var a: Int
        var b: Int
        init(_ x: Int, _ y: Int) { (a, b) = x < y ? (x, y) : (y, x) }
        static func < (l: Pair, r: Pair) -> Bool { (l.a, l.b) < (r.a, r.b) }
    }

    init(chaos: Chaos, random: SimRandom) {
        self.chaos = chaos
        self.random = random
    }

    func canReach(_ from: Int, _ to: Int) -> Bool { from == to || !cutLinks.contains(Pair(from, to)) }

    func reachesDatabase(_ node: Int) -> Bool { !cutFromDatabase.contains(node) }

    mutating func cut(_ a: Int, _ b: Int, at now: Int64) {
        if cutLinks.insert(Pair(a, b)).inserted { cutAt[Pair(a, b)] = now }
    }

    mutating func heal(_ a: Int, _ b: Int) {
        cutLinks.remove(Pair(a, b))
        cutAt[Pair(a, b)] = nil
    }
    mutating func cutDatabase(_ node: Int) { cutFromDatabase.insert(node) }
    mutating func healDatabase(_ node: Int) { cutFromDatabase.remove(node) }

    mutating func healAll() {
        cutLinks = []
        cutAt = [:]
        cutFromDatabase = []
    }

    /// The delays after which copies of one node-to-node message arrive: none (dropped), one,
    /// or two (duplicated). Whether the link is cut is judged at arrival.
    mutating func deliveries() -> [Int64] {
        if random.chance(chaos.dropRate) { return [] }
        var delays = [delay()]
        if random.chance(chaos.duplicateRate) { delays.append(delay()) }
        return delays
    }

    /// A database round trip's leg: never dropped or duplicated by the network (a TCP
    /// connection and a transaction), only delayed; a cut link loses it.
    mutating func databaseDelay() -> Int64 { random.int64(chaos.baseDelay) }

    private mutating func delay() -> Int64 {
        random.chance(chaos.slowRate) ? random.int64(chaos.slowDelay) : random.int64(chaos.baseDelay)
    }
}
