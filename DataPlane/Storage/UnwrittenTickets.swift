/// The first tickets of one partition's rows that are not written yet (queued or being
/// flushed), as a multiset with its minimum at hand: a partition's writes are durable through
/// ticket `t` once `oldest > t`. Rows arrive with the newest ticket (tickets only grow), so
/// inserting is an append; they leave in any order, as flushes land.
struct UnwrittenTickets: Sendable {
    private var tickets: [UInt64] = []
    private var counts: [Int] = []
    private var head = 0

    /// Rows counted.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// The oldest first ticket still unwritten.
    var oldest: UInt64? { head < tickets.count ? tickets[head] : nil }

    /// Counts one more row first queued under `ticket`, the newest ticket so far.
    mutating func insert(_ ticket: UInt64) {
        count += 1
        if let last = tickets.last, head < tickets.count {
            assert(ticket >= last, "tickets only grow")
            if last == ticket {
                counts[counts.count - 1] += 1
                return
            }
        }
        tickets.append(ticket)
        counts.append(1)
    }

    /// One row first queued under `ticket` left: written, or dropped for good.
    mutating func remove(_ ticket: UInt64) {
        var low = head
        var high = tickets.count
        while low < high {
            let middle = (low + high) / 2
            if tickets[middle] < ticket { low = middle + 1 } else { high = middle }
        }
        guard low < tickets.count, tickets[low] == ticket, counts[low] > 0 else {
            assertionFailure("ticket \(ticket) was not counted")
            return
        }
        counts[low] -= 1
        count -= 1
        while head < tickets.count && counts[head] == 0 { head += 1 }
        if head == tickets.count {
            tickets.removeAll(keepingCapacity: true)
            counts.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > tickets.count {
            tickets.removeFirst(head)
            counts.removeFirst(head)
            head = 0
        }
    }
}
