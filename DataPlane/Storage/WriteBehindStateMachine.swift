/// The logic of write-behind as a value: events in, actions out, no I/O and no clock of its
/// own (postgres-nio's connection state machines are the model). `WriteBehindQueue` feeds it
/// events and performs what it returns; tests drive it directly, instant by instant.
///
/// Durability is a watermark over tickets. Every `enqueue` gets the next ticket; a queued row
/// remembers the first ticket it covers (`PendingRecordQueue`). Rows are flushed oldest first,
/// one flush at a time, so after a commit every ticket below the oldest row still queued is
/// durable, and tickets resolve in order. One flush at a time is also what keeps an older
/// state of a row from landing after a newer one.
struct WriteBehindStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Swift.Duration {
    /// Identifies a suspended caller (an `enqueue` waiting for room, a durability or drain
    /// waiter); the queue keeps the continuations, the machine only their ids.
    typealias WaiterID = UInt64

    /// What to do about flushing after an event.
    enum Next: Equatable {
        /// Call `store` with these rows, then report `flushSucceeded` or `flushFailed`.
        case flush([StoredRecord])
        /// Nothing to do before this instant (nil: until the next event).
        case wait(until: Instant?)
    }

    /// Callers to resume, produced by events.
    struct Resumptions: Equatable {
        /// Durability waiters and their answer.
        var durable: [(WaiterID, Bool)] = []
        /// Enqueues that waited for room, now admitted under these tickets.
        var admitted: [(WaiterID, FlushTicket)] = []
        /// Drain waiters and whether the queue emptied.
        var drained: [(WaiterID, Bool)] = []

        var isEmpty: Bool { durable.isEmpty && admitted.isEmpty && drained.isEmpty }

        static func == (lhs: Resumptions, rhs: Resumptions) -> Bool {
            lhs.durable.elementsEqual(rhs.durable, by: ==) && lhs.admitted.elementsEqual(rhs.admitted, by: ==)
                && lhs.drained.elementsEqual(rhs.drained, by: ==)
        }
    }

    enum EnqueueAction: Equatable {
        /// Queued under this ticket; `wakeFlusher` when the flusher should look again now
        /// (the queue was empty, so no timer runs, or it just reached `maxBatch`).
        case admitted(FlushTicket, wakeFlusher: Bool)
        /// The queue is full: suspend the caller until `Resumptions.admitted` names it.
        case suspend
    }

    enum WaitAction: Equatable {
        case resolved(Bool)
        /// Suspend until `Resumptions` names the waiter; `wakeFlusher` when its deadline is the
        /// earliest one, so the flusher's timer must be moved up.
        case suspend(wakeFlusher: Bool)
    }

    private struct DurabilityWaiter {
        var id: WaiterID
        var ticket: UInt64
        var deadline: Instant
    }

    private struct BlockedEnqueue {
        var id: WaiterID
        var records: [StoredRecord]
    }

    private struct DrainWaiter {
        var id: WaiterID
        var deadline: Instant
    }

    let configuration: WriteBehindConfiguration
    private var queue = PendingRecordQueue<Instant>()
    private var inFlight: [PendingRecordQueue<Instant>.Entry]?
    private var blocked: [BlockedEnqueue] = []
    private var blockedRowCount = 0
    private var lastTicket: UInt64 = 0
    private var durableThrough: UInt64 = 0
    /// Sorted by ticket, so that a commit resolves a prefix.
    private var durabilityWaiters: [DurabilityWaiter] = []
    private var earliestWaiterDeadline: Instant?
    private var drainWaiters: [DrainWaiter] = []
    private var consecutiveFailures = 0
    private var retryAt: Instant?
    private var lastError: String?

    init(configuration: WriteBehindConfiguration) {
        self.configuration = configuration
    }

    // MARK: Queries

    var status: WriteBehindStatus {
        WriteBehindStatus(
            pendingCount: queue.count + (inFlight?.count ?? 0) + blockedRowCount,
            isHealthy: consecutiveFailures == 0,
            lastError: consecutiveFailures == 0 ? nil : lastError,
            consecutiveFailures: consecutiveFailures,
            durableThrough: FlushTicket(sequence: durableThrough),
            lastTicket: FlushTicket(sequence: lastTicket)
        )
    }

    var isFlushing: Bool { inFlight != nil }

    /// Rows that count against `maxPending`: queued and being flushed.
    private var unsettledCount: Int { queue.count + (inFlight?.count ?? 0) }

    // MARK: Events

    /// A caller hands over rows (the merged CRDT states of one operation batch).
    mutating func enqueue(_ records: [StoredRecord], id: WaiterID, now: Instant) -> EnqueueAction {
        // FIFO: once anyone waits for room, later callers wait behind them.
        if !blocked.isEmpty || unsettledCount >= configuration.maxPending {
            blocked.append(BlockedEnqueue(id: id, records: records))
            blockedRowCount += records.count
            return .suspend
        }
        let wasEmpty = queue.isEmpty
        let before = queue.count
        let ticket = admit(records, now: now)
        let reachedBatch = before < configuration.maxBatch && queue.count >= configuration.maxBatch
        let wake = !isFlushing && retryAt == nil && ((wasEmpty && !queue.isEmpty) || reachedBatch)
        return .admitted(ticket, wakeFlusher: wake)
    }

    /// A suspended `enqueue` was cancelled: admit it now, over the limit. Dropping its rows
    /// would lose writes that are already merged in memory.
    mutating func enqueueCancelled(id: WaiterID, now: Instant) -> FlushTicket? {
        guard let index = blocked.firstIndex(where: { $0.id == id }) else { return nil }
        let waiter = blocked.remove(at: index)
        blockedRowCount -= waiter.records.count
        return admit(waiter.records, now: now)
    }

    /// A caller waits for `ticket` to become durable, until `deadline`.
    mutating func waitUntilDurable(_ ticket: FlushTicket, id: WaiterID, deadline: Instant, now: Instant) -> WaitAction {
        if ticket.sequence <= durableThrough { return .resolved(true) }
        // A ticket this queue never issued will never resolve.
        if ticket.sequence > lastTicket || deadline <= now { return .resolved(false) }
        let waiter = DurabilityWaiter(id: id, ticket: ticket.sequence, deadline: deadline)
        if let last = durabilityWaiters.last, last.ticket > ticket.sequence {
            let index = durabilityWaiters.partitioningIndex { $0.ticket > ticket.sequence }
            durabilityWaiters.insert(waiter, at: index)
        } else {
            durabilityWaiters.append(waiter)
        }
        let isEarliest = earliestWaiterDeadline.map { deadline < $0 } ?? true
        if isEarliest { earliestWaiterDeadline = deadline }
        return .suspend(wakeFlusher: isEarliest)
    }

    /// A durability waiter's task was cancelled: it gets `false`.
    mutating func durabilityWaitCancelled(id: WaiterID) -> Bool {
        guard let index = durabilityWaiters.firstIndex(where: { $0.id == id }) else { return false }
        durabilityWaiters.remove(at: index)
        return true
    }

    /// Someone asks for everything to be flushed now, and to hear when the queue is empty or
    /// `deadline` passed. Returns the answer at once when there is nothing to wait for.
    mutating func drain(id: WaiterID, deadline: Instant, now: Instant) -> Bool? {
        if isSettled { return true }
        if deadline <= now { return false }
        drainWaiters.append(DrainWaiter(id: id, deadline: deadline))
        return nil
    }

    /// The flusher looks at the queue: time passed, or an event woke it. Expires waiters
    /// whose deadline passed and says whether to flush now or how long to wait.
    mutating func tick(now: Instant) -> (Resumptions, Next) {
        var resumptions = expire(now: now)
        if inFlight != nil {
            return (resumptions, .wait(until: earliestDeadline(after: nil)))
        }
        if let retryAt {
            if now < retryAt { return (resumptions, .wait(until: earliestDeadline(after: retryAt))) }
            self.retryAt = nil
        }
        guard let oldest = queue.first else {
            // Nothing queued and nothing in flight: drains are done.
            resumptions.drained += finishDrains(success: true)
            return (resumptions, .wait(until: earliestDeadline(after: nil)))
        }
        let due = oldest.enqueuedAt.advanced(by: configuration.flushInterval)
        let flushNow = queue.count >= configuration.maxBatch || now >= due || !drainWaiters.isEmpty || !blocked.isEmpty
        guard flushNow else { return (resumptions, .wait(until: earliestDeadline(after: due))) }
        let entries = queue.removeFirst(upTo: configuration.maxFlushRows)
        inFlight = entries
        return (resumptions, .flush(entries.map(\.record)))
    }

    /// The flush handed out by `tick` committed.
    mutating func flushSucceeded(now: Instant) -> Resumptions {
        guard inFlight != nil else { return Resumptions() }
        inFlight = nil
        consecutiveFailures = 0
        retryAt = nil
        lastError = nil
        var resumptions = Resumptions()
        // Everything older than the oldest row still queued is committed now.
        durableThrough = (queue.first?.firstTicket ?? (lastTicket + 1)) - 1
        let resolved = durabilityWaiters.prefix { $0.ticket <= durableThrough }
        resumptions.durable = resolved.map { ($0.id, true) }
        durabilityWaiters.removeFirst(resolved.count)
        if !resolved.isEmpty { earliestWaiterDeadline = durabilityWaiters.lazy.map(\.deadline).min() }
        // Room freed: let blocked callers in, oldest first.
        while let next = blocked.first, unsettledCount < configuration.maxPending {
            blocked.removeFirst()
            blockedRowCount -= next.records.count
            resumptions.admitted.append((next.id, admit(next.records, now: now)))
        }
        if isSettled { resumptions.drained = finishDrains(success: true) }
        return resumptions
    }

    /// The flush handed out by `tick` failed: its rows go back in front, and flushing pauses
    /// for the backoff (10 ms, doubling, capped).
    mutating func flushFailed(_ reason: String, now: Instant) -> Resumptions {
        guard let entries = inFlight else { return Resumptions() }
        inFlight = nil
        queue.putBack(entries)
        consecutiveFailures += 1
        lastError = reason
        retryAt = now.advanced(by: backoff(afterFailures: consecutiveFailures))
        return Resumptions()
    }

    // MARK: Internals

    private var isSettled: Bool { queue.isEmpty && inFlight == nil && blocked.isEmpty }

    private mutating func admit(_ records: [StoredRecord], now: Instant) -> FlushTicket {
        lastTicket += 1
        for record in records {
            queue.insert(record, ticket: lastTicket, now: now)
        }
        // A call with no rows (or whose rows are all older than what is durable) is durable
        // as soon as everything before it is.
        if records.isEmpty && queue.isEmpty && inFlight == nil && durableThrough == lastTicket - 1 {
            durableThrough = lastTicket
        }
        return FlushTicket(sequence: lastTicket)
    }

    func backoff(afterFailures failures: Int) -> Duration {
        var delay = configuration.initialBackoff
        for _ in 1..<max(1, failures) {
            delay *= 2
            if delay >= configuration.maxBackoff { return configuration.maxBackoff }
        }
        return min(delay, configuration.maxBackoff)
    }

    private mutating func expire(now: Instant) -> Resumptions {
        var resumptions = Resumptions()
        if let earliest = earliestWaiterDeadline, earliest <= now {
            var kept: [DurabilityWaiter] = []
            kept.reserveCapacity(durabilityWaiters.count)
            for waiter in durabilityWaiters {
                if waiter.deadline <= now {
                    resumptions.durable.append((waiter.id, false))
                } else {
                    kept.append(waiter)
                }
            }
            durabilityWaiters = kept
            earliestWaiterDeadline = kept.lazy.map(\.deadline).min()
        }
        if drainWaiters.contains(where: { $0.deadline <= now }) {
            resumptions.drained = drainWaiters.filter { $0.deadline <= now }.map { ($0.id, false) }
            drainWaiters.removeAll { $0.deadline <= now }
        }
        return resumptions
    }

    private mutating func finishDrains(success: Bool) -> [(WaiterID, Bool)] {
        let finished = drainWaiters.map { ($0.id, success) }
        drainWaiters.removeAll()
        return finished
    }

    /// The earliest of `candidate` and every waiter's deadline.
    private func earliestDeadline(after candidate: Instant?) -> Instant? {
        var earliest = candidate
        for deadline in [earliestWaiterDeadline] + drainWaiters.map(\.deadline) {
            guard let deadline else { continue }
            if earliest.map({ deadline < $0 }) ?? true { earliest = deadline }
        }
        return earliest
    }
}

extension Array {
    /// The first index whose element satisfies `belongsInSecondPartition`, for an array
    /// partitioned by it (binary search).
    fileprivate func partitioningIndex(where belongsInSecondPartition: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsInSecondPartition(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
