@testable import DataPlane
import Testing
import TopGunCore

extension StorageTests {
    @Suite("UnwrittenTickets")
    struct UnwrittenTicketsTests {
        /// Rows arriving under growing tickets and leaving in any order, against a plain
        /// multiset: the oldest ticket and the count always agree.
        @Test(arguments: 0..<20)
        func agreesWithAMultiset(seed: UInt64) {
            var random = SplitMix64(seed: seed)
            var tickets = UnwrittenTickets()
            var model: [UInt64] = []
            var ticket: UInt64 = 0
            for _ in 0..<1_000 {
                if model.isEmpty || random.next() % 2 == 0 {
                    if random.next() % 3 != 0 { ticket += 1 }
                    let copies = 1 + Int(random.next() % 3)
                    for _ in 0..<copies {
                        tickets.insert(ticket)
                        model.append(ticket)
                    }
                } else {
                    let gone = model.remove(at: Int(random.next() % UInt64(model.count)))
                    tickets.remove(gone)
                }
                // Plain comparisons in the loop: an expectation per step would cost more than
                // the step.
                if tickets.oldest != model.min() || tickets.count != model.count || tickets.isEmpty != model.isEmpty {
                    Issue.record("seed \(seed): oldest \(String(describing: tickets.oldest)) count \(tickets.count), model \(String(describing: model.min())) \(model.count)")
                    return
                }
            }
        }
    }
}
