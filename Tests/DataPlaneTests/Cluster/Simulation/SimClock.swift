import Synchronization

/// The virtual clock as production code reads it (`LeaseWatch`'s `elapsed`): a `Sendable`
/// reading of the one the world advances. Each world has its own; only its task touches it.
final class SimClockReading: Sendable {
    private let milliseconds = Atomic<Int64>(0)

    var now: Int64 { milliseconds.load(ordering: .relaxed) }

    func set(_ now: Int64) { milliseconds.store(now, ordering: .relaxed) }
}

/// Virtual time in milliseconds: the database's clock (leases expire by it), every node's
/// clock and every timer. Nothing in the simulation reads a real clock.
struct SimInstant: InstantProtocol, Hashable, Sendable, CustomStringConvertible {
    var ms: Int64

    init(ms: Int64) { self.ms = ms }

    func advanced(by duration: Duration) -> SimInstant { SimInstant(ms: ms + SimInstant.milliseconds(duration)) }

    func duration(to other: SimInstant) -> Duration { .milliseconds(other.ms - ms) }

    static func < (lhs: SimInstant, rhs: SimInstant) -> Bool { lhs.ms < rhs.ms }

    /// Whole milliseconds of `duration`, rounded up (a timer never fires early).
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let sub = attoseconds / 1_000_000_000_000_000
        let rest = attoseconds % 1_000_000_000_000_000
        return seconds * 1000 + sub + (rest > 0 ? 1 : 0)
    }

    var description: String { "\(ms)ms" }
}

/// Events by (time, sequence): two events at the same instant run in the order they were
/// scheduled, so a run depends only on the seed. A binary heap.
struct SimEventQueue<Event> {
    private struct Item {
        var time: Int64
        var sequence: UInt64
        var event: Event
    }

    private var heap: [Item] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, at time: Int64) {
        nextSequence += 1
        heap.append(Item(time: time, sequence: nextSequence, event: event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest event and its time.
    mutating func pop() -> (time: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let item = heap.removeLast()
        var parent = 0
        while true {
            let left = parent * 2 + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, Self.precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, Self.precedes(heap[right], heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (item.time, item.event)
    }

    var nextTime: Int64? { heap.first?.time }

    private static func precedes(_ a: Item, _ b: Item) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }
}
