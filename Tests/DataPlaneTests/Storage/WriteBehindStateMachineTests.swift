@testable import DataPlane
import Testing
import TopGunCore

extension StorageTests {
    /// The write-behind logic without a database or a clock: events in, actions out.
    @Suite("WriteBehindStateMachine")
    struct WriteBehindStateMachineTests {
        typealias Machine = WriteBehindStateMachine<ContinuousClock.Instant>
        let t0 = ContinuousClock.now

        func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0.advanced(by: .milliseconds(milliseconds)) }

        /// One flush at a time unless a test asks for more.
        func machine(maxBatch: Int = 100, maxPending: Int = 1_000, maxFlushRows: Int = .max, concurrentFlushes: Int = 1) -> Machine {
            Machine(configuration: WriteBehindConfiguration(
                maxBatch: maxBatch, flushInterval: .milliseconds(5), maxPending: maxPending, maxFlushRows: maxFlushRows,
                maxConcurrentFlushes: concurrentFlushes, initialBackoff: .milliseconds(10), maxBackoff: .seconds(1)))
        }

        func row(_ key: String, _ version: Int64, kind: StoredValue.Kind = .lww) -> StoredRecord {
            let storageKey = StorageFixtures.key(key)
            switch kind {
            case .lww: return StorageFixtures.record(storageKey, .lww(LWWRecord(value: .int(version), timestamp: StorageFixtures.timestamp(version))))
            case .orMap: return StorageFixtures.record(storageKey, .orMap(ORMapEntry(key: key, records: [], tombstones: ["\(version):0:n"])))
            case .counter: return StorageFixtures.record(storageKey, .counter(PNCounter(positive: ["n": Double(version)])))
            }
        }

        /// Enqueues and returns the ticket (fails the test if the call was suspended).
        func enqueue(_ machine: inout Machine, _ records: [StoredRecord], id: UInt64 = 0, at now: ContinuousClock.Instant) -> FlushTicket {
            guard case .admitted(let ticket, _) = machine.enqueue(records, id: id, now: now) else {
                Issue.record("enqueue was suspended")
                return FlushTicket(sequence: 0)
            }
            return ticket
        }

        /// The rows of the flush `tick` starts now, if it starts one (its id in `lastFlush`).
        func flushedRows(_ machine: inout Machine, at now: ContinuousClock.Instant) -> [StoredRecord]? {
            flight(&machine, at: now)?.rows
        }

        func flight(_ machine: inout Machine, at now: ContinuousClock.Instant) -> (id: UInt64, rows: [StoredRecord])? {
            guard case .flush(let id, let rows) = machine.tick(now: now).1 else { return nil }
            return (id, rows)
        }

        // MARK: Coalescing

        @Test func laterWritesToARowReplaceThePendingOne() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1), row("b", 1)], at: t0)
            _ = enqueue(&m, [row("a", 2)], at: at(1))
            _ = enqueue(&m, [row("a", 3)], at: at(2))
            #expect(m.status.pendingCount == 2)
            let rows = flushedRows(&m, at: at(5))
            #expect(rows == [row("a", 3), row("b", 1)])
        }

        @Test func aCoalescedRowStaysNewIfAnyOfItsWritesKnewItWas() {
            var m = machine()
            var first = row("a", 1)
            first.mayExistInStorage = false
            _ = enqueue(&m, [first], at: t0)
            _ = enqueue(&m, [row("a", 2)], at: at(1))  // the writer saw `a` in memory by now
            let rows = flushedRows(&m, at: at(5))
            #expect(rows == [row("a", 2)])
            #expect(rows?.first?.mayExistInStorage == false, "no flush wrote the row in between")
            // A failed flush puts it back the same way, merged with a newer write.
            _ = enqueue(&m, [row("a", 3)], at: at(6))
            _ = m.failOnly("down", now: at(7))
            let retried = flushedRows(&m, at: at(17))
            #expect(retried == [row("a", 3)])
            #expect(retried?.first?.mayExistInStorage == false)
        }

        @Test func rowsOfDifferentKindsDoNotCoalesce() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1, kind: .lww), row("a", 1, kind: .orMap), row("a", 1, kind: .counter)], at: t0)
            #expect(flushedRows(&m, at: at(5))?.count == 3)
        }

        // MARK: When to flush

        @Test func flushesByIntervalAfterTheOldestRowArrived() {
            var m = machine()
            guard case .admitted(_, let wake) = m.enqueue([row("a", 1)], id: 0, now: t0) else { Issue.record("suspended"); return }
            #expect(wake, "the first row must wake an idle flusher so that it sets its timer")
            #expect(m.tick(now: t0).1 == .wait(until: at(5)))
            _ = enqueue(&m, [row("b", 1)], at: at(3))
            #expect(m.tick(now: at(4)).1 == .wait(until: at(5)))
            #expect(flushedRows(&m, at: at(5)) == [row("a", 1), row("b", 1)])
        }

        @Test func flushesBySizeWithoutWaiting() {
            var m = machine(maxBatch: 3)
            guard case .admitted(_, let first) = m.enqueue([row("a", 1)], id: 0, now: t0),
                case .admitted(_, let second) = m.enqueue([row("b", 1)], id: 0, now: t0),
                case .admitted(_, let third) = m.enqueue([row("c", 1)], id: 0, now: t0)
            else { Issue.record("suspended"); return }
            #expect(first && !second && third, "wake when the queue starts and when it reaches maxBatch, not in between")
            #expect(flushedRows(&m, at: t0)?.count == 3)
        }

        @Test func anIdleQueueWaitsForNothing() {
            var m = machine()
            #expect(m.tick(now: t0).1 == .wait(until: nil))
        }

        @Test func oneFlushAtATimeTakesEverythingPending() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            #expect(flushedRows(&m, at: at(5)) == [row("a", 1)])
            _ = enqueue(&m, [row("b", 1)], at: at(6))
            _ = enqueue(&m, [row("c", 1)], at: at(7))
            // While the first flush runs, nothing else starts, however due.
            #expect(m.tick(now: at(50)).1 == .wait(until: nil))
            _ = m.landOnly(now: at(50))
            #expect(flushedRows(&m, at: at(50)) == [row("b", 1), row("c", 1)])
        }

        @Test func twoFlushesOverlapButNeverOnTheSameRow() {
            var m = machine(concurrentFlushes: 2)
            let first = enqueue(&m, [row("a", 1), row("b", 1)], at: t0)
            guard let f1 = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let second = enqueue(&m, [row("c", 1)], at: at(6))
            let third = enqueue(&m, [row("a", 2)], at: at(6))
            // The second flush takes `c` but leaves `a`, whose older state is being written.
            guard let f2 = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            #expect(f2.rows == [row("c", 1)])
            #expect(m.tick(now: at(11)).1 == .wait(until: nil))
            _ = m.waitUntilDurable(first, id: 1, deadline: at(1_000), now: at(11))
            _ = m.waitUntilDurable(second, id: 2, deadline: at(1_000), now: at(11))
            // The newer flush commits first: its partition (`c`'s) is written through
            // `second`, while `a` and `b` are not, so only `second` is durable.
            #expect(m.flushSucceeded(f2.id, now: at(12)).durable.map(\.0) == [2])
            #expect(m.status.durableThrough == 0, "every partition is durable through nothing yet")
            let resumed = m.flushSucceeded(f1.id, now: at(13))
            #expect(resumed.durable.map(\.0) == [1])
            #expect(m.status.durableThrough == second.sequence)
            #expect(first.sequence < second.sequence && second.sequence < third.sequence)
            // Now `a`'s newer state may go.
            #expect(flushedRows(&m, at: at(13)) == [row("a", 2)])
            _ = m.landOnly(now: at(14))
            #expect(m.status.durableThrough == third.sequence)
        }

        @Test func anOlderFlushFailingHoldsBackTicketsOfANewerOneThatCommitted() {
            var m = machine(concurrentFlushes: 2)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let f1 = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let second = enqueue(&m, [row("b", 1)], at: at(6))
            guard let f2 = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            _ = m.flushSucceeded(f2.id, now: at(12))
            _ = m.flushFailed(f1.id, reason: "down", now: at(13))
            #expect(m.status.durableThrough == 0)
            #expect(m.status.pendingCount == 1)
            #expect(flushedRows(&m, at: at(23)) == [row("a", 1)])
            _ = m.landOnly(now: at(24))
            #expect(m.status.durableThrough == second.sequence)
        }

        @Test func maxFlushRowsSplitsABacklog() {
            var m = machine(maxFlushRows: 2)
            let ticket = enqueue(&m, [row("a", 1), row("b", 1), row("c", 1)], at: t0)
            #expect(flushedRows(&m, at: at(5))?.count == 2)
            _ = m.landOnly(now: at(6))
            #expect(m.waitUntilDurable(ticket, id: 1, deadline: at(1_000), now: at(6)) == .suspend(wakeFlusher: true),
                    "the ticket's third row is not written yet")
            #expect(flushedRows(&m, at: at(6)) == [row("c", 1)])
            #expect(m.landOnly(now: at(7)).durable.map(\.1) == [true])
        }

        // MARK: Tickets

        @Test func ticketsResolveOnlyAfterTheFlushThatContainsThemCommits() {
            var m = machine()
            let first = enqueue(&m, [row("a", 1)], at: t0)
            #expect(flushedRows(&m, at: at(5)) == [row("a", 1)])
            let second = enqueue(&m, [row("b", 1)], at: at(6))
            #expect(m.waitUntilDurable(first, id: 10, deadline: at(1_000), now: at(6)) == .suspend(wakeFlusher: true))
            #expect(m.waitUntilDurable(second, id: 11, deadline: at(1_000), now: at(6)) == .suspend(wakeFlusher: false))
            let afterFirst = m.landOnly(now: at(8))
            #expect(afterFirst.durable.map(\.0) == [10])
            #expect(afterFirst.durable.map(\.1) == [true])
            #expect(m.status.durableThrough == first.sequence)
            #expect(flushedRows(&m, at: at(11)) == [row("b", 1)])
            let afterSecond = m.landOnly(now: at(12))
            #expect(afterSecond.durable.map(\.0) == [11])
            #expect(m.waitUntilDurable(second, id: 12, deadline: at(1_000), now: at(12)) == .resolved(true))
        }

        @Test func aWriteToARowBeingFlushedWaitsForTheNextFlush() {
            var m = machine()
            let old = enqueue(&m, [row("a", 1)], at: t0)
            _ = flushedRows(&m, at: at(5))
            let new = enqueue(&m, [row("a", 2)], at: at(6))
            _ = m.landOnly(now: at(7))
            #expect(m.status.durableThrough == old.sequence)
            #expect(m.waitUntilDurable(new, id: 1, deadline: at(1_000), now: at(7)) == .suspend(wakeFlusher: true))
            #expect(flushedRows(&m, at: at(11)) == [row("a", 2)])
        }

        @Test func aCoalescedRowCoversTheOlderTicketToo() {
            var m = machine()
            let old = enqueue(&m, [row("a", 1)], at: t0)
            let new = enqueue(&m, [row("a", 2)], at: at(1))
            #expect(m.waitUntilDurable(old, id: 1, deadline: at(1_000), now: at(1)) == .suspend(wakeFlusher: true))
            #expect(flushedRows(&m, at: at(5)) == [row("a", 2)])
            #expect(m.landOnly(now: at(6)).durable.map(\.1) == [true])
            #expect(m.status.durableThrough == new.sequence)
        }

        @Test func waitersTimeOutWithFalse() {
            var m = machine()
            let ticket = enqueue(&m, [row("a", 1)], at: t0)
            _ = flushedRows(&m, at: at(5))
            #expect(m.waitUntilDurable(ticket, id: 7, deadline: at(100), now: at(5)) == .suspend(wakeFlusher: true))
            // The flusher must wake at the deadline even while a flush is running.
            #expect(m.tick(now: at(6)).1 == .wait(until: at(100)))
            let (resumed, _) = m.tick(now: at(100))
            #expect(resumed.durable.map(\.0) == [7])
            #expect(resumed.durable.map(\.1) == [false])
            // The flush that commits later resolves nobody twice.
            #expect(m.landOnly(now: at(120)).durable.isEmpty)
        }

        @Test func cancelledWaitersAreForgotten() {
            var m = machine()
            let ticket = enqueue(&m, [row("a", 1)], at: t0)
            _ = m.waitUntilDurable(ticket, id: 3, deadline: at(100), now: t0)
            let cancelled = m.durabilityWaitCancelled(id: 3)
            let cancelledAgain = m.durabilityWaitCancelled(id: 3)
            #expect(cancelled)
            #expect(!cancelledAgain)
            _ = flushedRows(&m, at: at(5))
            #expect(m.landOnly(now: at(6)).durable.isEmpty)
        }

        @Test func unknownTicketsAndEmptyEnqueues() {
            var m = machine()
            #expect(m.waitUntilDurable(FlushTicket(sequence: 99), id: 1, deadline: at(100), now: t0) == .resolved(false))
            let empty = enqueue(&m, [], at: t0)
            #expect(m.waitUntilDurable(empty, id: 2, deadline: at(100), now: t0) == .resolved(true))
            let real = enqueue(&m, [row("a", 1)], at: t0)
            let emptyAfter = enqueue(&m, [], at: t0)
            #expect(m.waitUntilDurable(emptyAfter, id: 3, deadline: at(100), now: t0) == .suspend(wakeFlusher: true))
            _ = flushedRows(&m, at: at(5))
            #expect(m.landOnly(now: at(6)).durable.map(\.0) == [3])
            #expect(m.status.durableThrough == emptyAfter.sequence)
            #expect(real.sequence < emptyAfter.sequence)
        }

        // MARK: Failures

        @Test func aFailedFlushKeepsItsRowsAndBacksOffExponentially() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            var now = at(5)
            var delays: [Duration] = []
            for _ in 0..<9 {
                guard flushedRows(&m, at: now) == [row("a", 1)] else { Issue.record("no retry at \(now)"); return }
                _ = m.failOnly("connection refused", now: now)
                #expect(!m.status.isHealthy)
                #expect(m.status.lastError == "connection refused")
                #expect(m.status.pendingCount == 1)
                guard case .wait(let until?) = m.tick(now: now).1 else { Issue.record("no backoff"); return }
                delays.append(until - now)
                now = until
            }
            #expect(delays.map { $0 / .milliseconds(1) } == [10, 20, 40, 80, 160, 320, 640, 1_000, 1_000])
            #expect(m.status.consecutiveFailures == 9)
            _ = flushedRows(&m, at: now)
            _ = m.landOnly(now: now)
            #expect(m.status.isHealthy)
            #expect(m.status.lastError == nil)
            #expect(m.status.pendingCount == 0)
        }

        @Test func writesDuringAFailureCoalesceWithTheFailedRows() {
            var m = machine()
            let first = enqueue(&m, [row("a", 1), row("b", 1)], at: t0)
            _ = flushedRows(&m, at: at(5))
            let second = enqueue(&m, [row("a", 2), row("c", 1)], at: at(6))
            _ = m.failOnly("down", now: at(7))
            #expect(m.status.pendingCount == 3)
            #expect(m.waitUntilDurable(first, id: 1, deadline: at(10_000), now: at(7)) == .suspend(wakeFlusher: true))
            // After the backoff: the newer state of `a` in the failed row's (older) place.
            #expect(flushedRows(&m, at: at(17)) == [row("a", 2), row("b", 1), row("c", 1)])
            let resumed = m.landOnly(now: at(18))
            #expect(resumed.durable.map(\.1) == [true])
            #expect(m.status.durableThrough == second.sequence)
        }

        // MARK: Back-pressure

        @Test func aFullQueueSuspendsEnqueuesUntilAFlushFreesRoom() {
            var m = machine(maxPending: 2)
            _ = enqueue(&m, [row("a", 1), row("b", 1)], at: t0)
            #expect(m.enqueue([row("c", 1)], id: 41, now: at(1)) == .suspend)
            #expect(m.enqueue([row("d", 1)], id: 42, now: at(1)) == .suspend)
            #expect(m.status.pendingCount == 4)
            // Blocked callers make the flush start at once.
            #expect(flushedRows(&m, at: at(1))?.count == 2)
            let resumed = m.landOnly(now: at(2))
            #expect(resumed.admitted.map(\.0) == [41, 42])
            #expect(resumed.admitted.map(\.1.sequence) == [2, 3])
            // They are ordinary queued rows now: due an interval after they were admitted.
            #expect(m.tick(now: at(2)).1 == .wait(until: at(7)))
            #expect(flushedRows(&m, at: at(7)) == [row("c", 1), row("d", 1)])
        }

        @Test func backPressureHoldsWhileTheStorageFails() {
            var m = machine(maxPending: 1)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            #expect(m.enqueue([row("b", 1)], id: 5, now: t0) == .suspend)
            _ = flushedRows(&m, at: t0)
            #expect(m.failOnly("down", now: at(1)).admitted.isEmpty)
            // Coalescing a row already counted does not make room either: FIFO order holds.
            #expect(m.enqueue([row("a", 2)], id: 6, now: at(2)) == .suspend)
            _ = flushedRows(&m, at: at(11))
            let resumed = m.landOnly(now: at(12))
            #expect(resumed.admitted.map(\.0) == [5])
        }

        @Test func aCancelledBlockedEnqueueIsAdmittedAnyway() {
            var m = machine(maxPending: 1)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            #expect(m.enqueue([row("b", 1)], id: 5, now: t0) == .suspend)
            #expect(m.enqueueCancelled(id: 5, now: t0)?.sequence == 2)
            #expect(m.enqueueCancelled(id: 5, now: t0) == nil)
            #expect(m.status.pendingCount == 2)
        }

        // MARK: Drain

        @Test func drainFlushesAtOnceAndAnswersWhenEmpty() {
            var m = machine()
            #expect(m.drain(id: 1, deadline: at(1_000), now: t0) == true)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            #expect(m.drain(id: 2, deadline: at(1_000), now: t0) == nil)
            // No waiting for the interval.
            #expect(flushedRows(&m, at: t0) == [row("a", 1)])
            let resumed = m.landOnly(now: at(1))
            #expect(resumed.drained.map(\.0) == [2])
            #expect(resumed.drained.map(\.1) == [true])
        }

        @Test func drainGivesUpAtItsDeadlineWhileTheStorageFails() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            #expect(m.drain(id: 2, deadline: at(100), now: t0) == nil)
            var now = t0
            var answer: Bool?
            while answer == nil && now < at(1_000) {
                let (resumed, next) = m.tick(now: now)
                if let drained = resumed.drained.first { answer = drained.1; break }
                switch next {
                case .flush(let id, _): _ = m.flushFailed(id, reason: "down", now: now)
                case .wait(let until): now = until ?? now.advanced(by: .milliseconds(1))
                }
            }
            #expect(answer == false)
            #expect(now == at(100))
            #expect(m.status.pendingCount == 1, "the rows stay queued")
        }

        // MARK: Partitions

        /// The partition of a test row's key (the fixtures' tenant).
        func partition(_ key: String) -> Int { row(key, 1).partition }

        @Test func testKeysLieInDistinctPartitions() {
            // The tests below rely on it.
            #expect(Set(["a", "b", "c", "d"].map(partition)).count == 4)
        }

        @Test func aPartitionsAcksGoWhileAnotherPartitionsRowsAreStillBeingWritten() {
            var m = machine(concurrentFlushes: 2)
            let slow = enqueue(&m, [row("a", 1)], at: t0)
            guard let f1 = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let fast = enqueue(&m, [row("b", 1)], at: at(6))
            guard let f2 = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            #expect(slow.partitions == PartitionSet([partition("a")]))
            #expect(m.waitUntilDurable(slow, id: 1, deadline: at(1_000), now: at(11)) == .suspend(wakeFlusher: true))
            #expect(m.waitUntilDurable(fast, id: 2, deadline: at(1_000), now: at(11)) == .suspend(wakeFlusher: false))
            #expect(m.flushSucceeded(f2.id, now: at(12)).durable.map(\.0) == [2])
            #expect(m.isDurable(slow) == nil)
            #expect(m.isDurable(fast) == true)
            #expect(m.flushFailed(f1.id, reason: "down", now: at(13)).durable.isEmpty)
            #expect(m.isDurable(slow) == nil, "a failed flush keeps the partition's rows unwritten")
        }

        @Test func aTicketTouchingTwoPartitionsWaitsForBoth() {
            var m = machine(concurrentFlushes: 2)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let f1 = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let both = enqueue(&m, [row("a", 2), row("b", 1)], at: at(6))
            guard let f2 = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            #expect(f2.rows == [row("b", 1)], "a's newer state waits for the flight carrying its older one")
            _ = m.flushSucceeded(f2.id, now: at(12))
            _ = m.flushSucceeded(f1.id, now: at(13))
            #expect(m.isDurable(both) == nil, "a@2 is still queued")
            #expect(flushedRows(&m, at: at(13)) == [row("a", 2)])
            _ = m.landOnly(now: at(14))
            #expect(m.isDurable(both) == true)
        }

        @Test func anIdempotentResendWaitsForTheRowsOfItsPartitionOnly() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            // The re-send changed nothing: no rows, but it touched `a`'s partition.
            guard case .admitted(let resend, _) = m.enqueue([], touching: PartitionSet([partition("a")]), id: 0, now: at(1)),
                case .admitted(let elsewhere, _) = m.enqueue([], touching: PartitionSet([partition("b")]), id: 0, now: at(1)),
                case .admitted(let anywhere, _) = m.enqueue([], id: 0, now: at(1))
            else { Issue.record("suspended"); return }
            #expect(m.isDurable(resend) == nil)
            #expect(m.isDurable(elsewhere) == true)
            #expect(m.isDurable(anywhere) == nil, "no partition named: every partition")
            _ = flushedRows(&m, at: at(5))
            _ = m.landOnly(now: at(6))
            #expect(m.isDurable(resend) == true)
            #expect(m.isDurable(anywhere) == true)
        }

        @Test func aPartitionDrainsOnItsOwn() {
            var m = machine(maxFlushRows: 1)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            _ = enqueue(&m, [row("b", 1)], at: t0)
            #expect(m.drain(partition: partition("c"), id: 1, deadline: at(1_000), now: t0) == true, "nothing of c is pending")
            #expect(m.drain(partition: partition("a"), id: 2, deadline: at(1_000), now: t0) == nil)
            // A drain flushes at once, not after the interval.
            #expect(flushedRows(&m, at: t0) == [row("a", 1)])
            let resumed = m.landOnly(now: at(1))
            #expect(resumed.drained.map(\.0) == [2])
            #expect(resumed.drained.map(\.1) == [true])
            #expect(m.status.pendingCount == 1, "b's row is still queued")
            #expect(m.drain(id: 3, deadline: at(1_000), now: at(1)) == nil, "the whole queue is not drained")
        }

        @Test func aPartitionDrainWaitsForItsRowsBlockedForRoom() {
            var m = machine(maxPending: 1)
            _ = enqueue(&m, [row("b", 1)], at: t0)
            #expect(m.enqueue([row("a", 1)], id: 9, now: t0) == .suspend)
            #expect(m.drain(partition: partition("a"), id: 2, deadline: at(1_000), now: t0) == nil, "a's row waits for room")
            _ = flushedRows(&m, at: t0)
            let admitted = m.landOnly(now: at(1))
            #expect(admitted.admitted.map(\.0) == [9])
            #expect(admitted.drained.isEmpty)
            _ = flushedRows(&m, at: at(1))
            #expect(m.landOnly(now: at(2)).drained.map(\.0) == [2])
        }

        @Test func fencingAPartitionDropsItsRowsAndReleasesItsWaitersWithFalse() {
            var m = machine()
            let written = enqueue(&m, [row("a", 1)], at: t0)
            _ = flushedRows(&m, at: at(5))
            _ = m.landOnly(now: at(6))
            let lost = enqueue(&m, [row("a", 2), row("b", 1)], at: at(7))
            let other = enqueue(&m, [row("b", 2)], at: at(7))
            #expect(m.waitUntilDurable(lost, id: 1, deadline: at(1_000), now: at(7)) == .suspend(wakeFlusher: true))
            #expect(m.waitUntilDurable(other, id: 2, deadline: at(1_000), now: at(7)) == .suspend(wakeFlusher: false))
            #expect(m.drain(partition: partition("a"), id: 3, deadline: at(1_000), now: at(7)) == nil)
            let fence = m.fence(partition("a"), now: at(8))
            #expect(fence.dropped == [row("a", 2)])
            #expect(fence.flightsToAwait.isEmpty)
            #expect(fence.resumptions.durable.map(\.0) == [1])
            #expect(fence.resumptions.durable.map(\.1) == [false])
            #expect(fence.resumptions.drained.map(\.0) == [3])
            #expect(fence.resumptions.drained.map(\.1) == [false])
            #expect(m.isDurable(written) == true, "what was written before the fence stays durable")
            #expect(m.status.fencedPartitions == PartitionSet([partition("a")]))
            // Later rows of the fenced partition are not queued, and their waiters hear false.
            let late = enqueue(&m, [row("a", 3)], at: at(9))
            #expect(m.waitUntilDurable(late, id: 4, deadline: at(1_000), now: at(9)) == .resolved(false))
            #expect(m.drain(partition: partition("a"), id: 5, deadline: at(1_000), now: at(9)) == false)
            #expect(flushedRows(&m, at: at(12)) == [row("b", 2)])
            #expect(m.landOnly(now: at(13)).durable.map(\.0) == [2])
            #expect(m.isDurable(lost) == false)
        }

        @Test func fencingAwaitsFlightsAndKeepsTheRowsOfThoseThatFail() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1), row("b", 1)], at: t0)
            guard let flight = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let fence = m.fence(partition("a"), now: at(6))
            #expect(fence.flightsToAwait == [flight.id])
            #expect(fence.dropped.isEmpty)
            _ = m.flushFailed(flight.id, reason: "down", now: at(7))
            #expect(m.takeFencedLeftovers(partition("a")) == [row("a", 1)])
            #expect(m.takeFencedLeftovers(partition("a")).isEmpty)
            #expect(flushedRows(&m, at: at(17)) == [row("b", 1)], "only the unfenced partition's row is retried")
        }

        @Test func anUnfencedPartitionIsWrittenAgainButItsLostTicketsStayLost() {
            var m = machine()
            let lost = enqueue(&m, [row("a", 1)], at: t0)
            _ = m.fence(partition("a"), now: at(1))
            let whileFenced = enqueue(&m, [row("a", 2)], at: at(2))
            m.unfence(partition("a"))
            let after = enqueue(&m, [row("a", 3)], at: at(3))
            #expect(m.isDurable(lost) == false)
            #expect(m.isDurable(whileFenced) == false)
            #expect(m.isDurable(after) == nil)
            #expect(flushedRows(&m, at: at(8)) == [row("a", 3)])
            _ = m.landOnly(now: at(9))
            #expect(m.isDurable(after) == true)
            #expect(m.isDurable(lost) == false)
            #expect(m.status.fencedPartitions.isEmpty)
        }

        @Test func aBlockedWriteWhoseRowsAFenceDroppedStaysLostAfterAnUnfence() {
            var m = machine(maxPending: 1)
            _ = enqueue(&m, [row("b", 1)], at: t0)
            // Blocked for room, with a row of a's partition.
            #expect(m.enqueue([row("a", 1), row("c", 1)], id: 7, now: t0) == .suspend)
            let fence = m.fence(partition("a"), now: at(1))
            #expect(fence.dropped == [row("a", 1)])
            m.unfence(partition("a"))
            _ = flushedRows(&m, at: at(1))
            let admitted = m.landOnly(now: at(2)).admitted
            guard let ticket = admitted.first(where: { $0.0 == 7 })?.1 else { Issue.record("not admitted"); return }
            _ = flushedRows(&m, at: at(7))
            _ = m.landOnly(now: at(8))
            #expect(m.isDurable(ticket) == false, "its row of a was never written")
            // A write to a after the unfence is written and durable.
            let later = enqueue(&m, [row("a", 2)], at: at(9))
            _ = flushedRows(&m, at: at(14))
            _ = m.landOnly(now: at(15))
            #expect(m.isDurable(later) == true)
        }

        @Test func anUnfenceWhileTheFenceAwaitsItsFlightsKeepsTheLeftovers() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let flight = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let fence = m.fence(partition("a"), now: at(6))
            #expect(fence.flightsToAwait == [flight.id])
            _ = m.flushFailed(flight.id, reason: "down", now: at(7))
            // Owned again before the fence's caller took what came back: it still gets it.
            m.unfence(partition("a"))
            #expect(m.takeFencedLeftovers(partition("a")) == [row("a", 1)])
        }

        @Test func aFlightFailingAfterAnUnfenceIsRetriedHere() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let flight = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = m.fence(partition("a"), now: at(6))
            m.unfence(partition("a"))
            _ = m.flushFailed(flight.id, reason: "down", now: at(7))
            #expect(m.takeFencedLeftovers(partition("a")).isEmpty)
            #expect(flushedRows(&m, at: at(17)) == [row("a", 1)], "owned again: written here")
        }

        @Test func rowsMergedIntoAFailedFlushMakeRoomForBlockedCallers() {
            var m = machine(maxPending: 2)
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let flight = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = enqueue(&m, [row("a", 2)], at: at(6))
            #expect(m.enqueue([row("b", 1)], id: 9, now: at(6)) == .suspend)
            // a@1 comes back and a@2 merges into it: one row where there were two.
            let resumed = m.flushFailed(flight.id, reason: "down", now: at(7))
            #expect(resumed.admitted.map(\.0) == [9])
        }

        @Test func aFenceHandsOverNoRowsOfATenantPurgedMeanwhile() {
            var m = machine()
            _ = enqueue(&m, [row("a", 1)], at: t0)
            guard let flight = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = m.fence(partition("a"), now: at(6))
            _ = m.purgeTenant(StorageFixtures.tenantA, now: at(7))
            _ = m.flushFailed(flight.id, reason: "down", now: at(8))
            #expect(m.withoutPurgedTenants(m.takeFencedLeftovers(partition("a"))).isEmpty)
        }

        // MARK: A model check

        /// Random enqueues, timing, fences, and flushes that finish in any order and fail at
        /// random, against a simulated database: whenever a ticket is durable (in its
        /// partitions), the database holds, for every row of that enqueue, a state at least as
        /// new as the one enqueued; an answer never changes once given; no row ever goes back
        /// to an older state; no row is in two flushes at once; and once the storage works
        /// and every fence is lifted, every ticket gets its answer.
        @Test(arguments: 0..<40)
        func durableTicketsAreAlwaysInTheDatabase(seed: UInt64) {
            var random = SplitMix64(seed: seed)
            var m = machine(maxBatch: 1 + Int(random.next() % 8), maxPending: 4 + Int(random.next() % 12),
                            maxFlushRows: 1 + Int(random.next() % 10), concurrentFlushes: 1 + Int(random.next() % 3))
            let keys = (0..<6).map { "k\($0)" }
            var database: [String: Int64] = [:]
            var version: Int64 = 0
            var enqueued: [(ticket: FlushTicket, rows: [String: Int64])] = []
            var answers: [UInt64: Bool] = [:]
            var blocked: [UInt64: [String: Int64]] = [:]
            var flights: [UInt64: [StoredRecord]] = [:]
            var now = t0
            var nextID: UInt64 = 1

            func admit(_ resumed: Machine.Resumptions) {
                for (id, ticket) in resumed.admitted {
                    enqueued.append((ticket, blocked.removeValue(forKey: id)!))
                }
            }

            func land(_ id: UInt64, failing: Bool) {
                let rows = flights.removeValue(forKey: id)!
                if failing {
                    admit(m.flushFailed(id, reason: "random failure", now: now))
                    return
                }
                for record in rows {
                    guard case .lww(let lww) = record.value, case .int(let v)? = lww.value else { continue }
                    #expect(v >= (database[record.key.key] ?? -1), "an older state overwrote a newer one (seed \(seed))")
                    database[record.key.key] = v
                }
                admit(m.flushSucceeded(id, now: now))
            }

            func startFlights() {
                while case .flush(let id, let rows) = m.tick(now: now).1 {
                    let inFlight = Set(flights.values.joined().map(\.key))
                    #expect(rows.allSatisfy { !inFlight.contains($0.key) }, "a row in two flushes at once (seed \(seed))")
                    flights[id] = rows
                }
            }

            // Tickets not answered yet, by position in `enqueued`; answered ones are checked
            // again only at the end (checking all of them at every step costs seconds).
            var unanswered: [Int] = []
            var checkedThrough = 0

            func check(all: Bool = false) {
                unanswered += checkedThrough..<enqueued.count
                checkedThrough = enqueued.count
                for index in all ? Array(enqueued.indices) : unanswered {
                    let (ticket, rows) = enqueued[index]
                    let answer = m.isDurable(ticket)
                    if let earlier = answers[ticket.sequence] {
                        if answer != earlier { Issue.record("ticket \(ticket.sequence) changed its answer (seed \(seed))") }
                        continue
                    }
                    guard let answer else { continue }
                    answers[ticket.sequence] = answer
                    guard answer else { continue }
                    for (key, version) in rows where (database[key] ?? -1) < version {
                        Issue.record("ticket \(ticket.sequence) durable but \(key)@\(version) not stored (seed \(seed))")
                    }
                }
                unanswered.removeAll { answers[enqueued[$0].ticket.sequence] != nil }
            }

            for _ in 0..<600 {
                switch random.next() % 9 {
                case 0, 1, 2:
                    var rows: [String: Int64] = [:]
                    for _ in 0..<(1 + random.next() % 3) {
                        version += 1
                        rows[keys[Int(random.next() % 6)]] = version
                    }
                    let id = nextID
                    nextID += 1
                    switch m.enqueue(rows.map { row($0.key, $0.value) }, id: id, now: now) {
                    case .admitted(let ticket, _): enqueued.append((ticket, rows))
                    case .suspend: blocked[id] = rows
                    }
                case 3:
                    now = now.advanced(by: .milliseconds(Int64(random.next() % 20)))
                case 4:
                    let partition = partition(keys[Int(random.next() % 6)])
                    if m.status.fencedPartitions.contains(partition) {
                        m.unfence(partition)
                    } else {
                        let fence = m.fence(partition, now: now)
                        admit(fence.resumptions)
                        #expect(fence.dropped.allSatisfy { $0.partition == partition })
                    }
                default:
                    // Some flight finishes, not necessarily the oldest.
                    guard !flights.isEmpty else { break }
                    let id = flights.keys.sorted()[Int(random.next() % UInt64(flights.count))]
                    land(id, failing: random.next() % 3 == 0)
                }
                startFlights()
                check()
            }
            // The storage recovers and every fence is lifted: everything gets an answer.
            for partition in m.status.fencedPartitions { m.unfence(partition) }
            var rounds = 0
            while (m.status.pendingCount > 0 || !flights.isEmpty) && rounds < 10_000 {
                rounds += 1
                now = now.advanced(by: .milliseconds(20))
                for id in flights.keys.sorted() { land(id, failing: false) }
                startFlights()
            }
            check(all: true)
            #expect(m.status.pendingCount == 0, "seed \(seed)")
            #expect(enqueued.allSatisfy { answers[$0.ticket.sequence] != nil }, "a ticket left without an answer (seed \(seed))")
        }
    }
}

extension WriteBehindStateMachine.Next: CustomStringConvertible {
    public var description: String {
        switch self {
        case .flush(let id, let rows): return "flush #\(id) (\(rows.count) rows)"
        case .wait(let until): return "wait(until: \(until.map { "\($0)" } ?? "nil"))"
        }
    }
}

extension WriteBehindStateMachine {
    /// Reports the one flush in flight as committed (tests of one flush at a time).
    mutating func landOnly(now: Instant) -> Resumptions {
        guard flushesInFlight.count == 1, let id = flushesInFlight.first else {
            Issue.record("expected exactly one flush in flight, found \(flushesInFlight.count)")
            return Resumptions()
        }
        return flushSucceeded(id, now: now)
    }

    /// Reports the one flush in flight as failed.
    mutating func failOnly(_ reason: String, now: Instant) -> Resumptions {
        guard flushesInFlight.count == 1, let id = flushesInFlight.first else {
            Issue.record("expected exactly one flush in flight, found \(flushesInFlight.count)")
            return Resumptions()
        }
        return flushFailed(id, reason: reason, now: now)
    }
}
