import Tenancy

/// The logic of write-behind as a value: events in, actions out, no I/O and no clock of its
/// own (postgres-nio's connection state machines are the model). `WriteBehindQueue` feeds it
/// events and performs what it returns; tests drive it directly, instant by instant.
///
/// Durability is a watermark over tickets. Every `enqueue` gets the next ticket; a queued row
/// remembers the first ticket it covers (`PendingRecordQueue`). After a commit, every ticket
/// below the oldest first ticket still queued or in flight is durable, so tickets resolve in
/// order.
///
/// Up to `maxConcurrentFlushes` flushes run at once (a pipeline: while the database commits
/// one batch, the next is encoded and sent), but a row is never in two of them: a row whose
/// identity is in flight waits in the queue until that flush ends. That is what keeps an
/// older state of a row from landing after a newer one, whatever order flushes finish in.
struct WriteBehindStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Swift.Duration {
    /// Identifies a suspended caller (an `enqueue` waiting for room, a durability or drain
    /// waiter); the queue keeps the continuations, the machine only their ids.
    typealias WaiterID = UInt64

    /// Names one flush handed out by `tick`.
    typealias FlushID = UInt64

    /// What to do about flushing after an event.
    enum Next: Equatable {
        /// Call `store` with these rows, then report `flushSucceeded(id)` or `flushFailed(id)`;
        /// then tick again (another flush may start at once).
        case flush(FlushID, [StoredRecord])
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

    private typealias Entry = PendingRecordQueue<Instant>.Entry

    let configuration: WriteBehindConfiguration
    private var queue = PendingRecordQueue<Instant>()
    /// Flushes handed out and not yet reported, each with its rows (in first-ticket order).
    private var flights: [FlushID: [Entry]] = [:]
    private var nextFlushID: FlushID = 0
    /// The rows of every flight, which no new flight may take.
    private var identitiesInFlight = Set<RecordIdentity>()
    private var rowsInFlight = 0
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
    /// Deleted tenants: none of their rows is written again (a deletion is final), so that no
    /// flush can bring back rows the storage purge removed.
    private var purgedTenants = Set<TenantID>()

    init(configuration: WriteBehindConfiguration) {
        self.configuration = configuration
    }

    // MARK: Queries

    var status: WriteBehindStatus {
        WriteBehindStatus(
            pendingCount: queue.count + rowsInFlight + blockedRowCount,
            isHealthy: consecutiveFailures == 0,
            lastError: consecutiveFailures == 0 ? nil : lastError,
            consecutiveFailures: consecutiveFailures,
            durableThrough: FlushTicket(sequence: durableThrough),
            lastTicket: FlushTicket(sequence: lastTicket)
        )
    }

    /// Flushes handed out and not yet reported, oldest first.
    var flushesInFlight: [FlushID] { flights.keys.sorted() }

    /// Rows that count against `maxPending`: queued and being flushed.
    private var unsettledCount: Int { queue.count + rowsInFlight }

    // MARK: Events

    /// A caller hands over rows (the merged CRDT states of one operation batch).
    mutating func enqueue(_ records: [StoredRecord], id: WaiterID, now: Instant) -> EnqueueAction {
        // A write of a deleted tenant that raced its purge (merged in memory before its
        // session closed) is not persisted.
        let records = purgedTenants.isEmpty ? records : records.filter { !purgedTenants.contains($0.key.tenant) }
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
        let wake = flights.count < configuration.maxConcurrentFlushes && retryAt == nil
            && ((wasEmpty && !queue.isEmpty) || reachedBatch)
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
    /// whose deadline passed and says whether to start a flush now or how long to wait.
    mutating func tick(now: Instant) -> (Resumptions, Next) {
        var resumptions = expire(now: now)
        if let retryAt {
            if now < retryAt { return (resumptions, .wait(until: earliestDeadline(after: retryAt))) }
            self.retryAt = nil
        }
        guard let oldest = queue.first else {
            // Nothing queued and nothing in flight: drains are done.
            if flights.isEmpty { resumptions.drained += finishDrains(success: true) }
            return (resumptions, .wait(until: earliestDeadline(after: nil)))
        }
        guard flights.count < configuration.maxConcurrentFlushes else {
            // A finishing flush is an event too: nothing to time until then but waiters.
            return (resumptions, .wait(until: earliestDeadline(after: nil)))
        }
        let due = oldest.enqueuedAt.advanced(by: configuration.flushInterval)
        let flushNow = queue.count >= configuration.maxBatch || now >= due || !drainWaiters.isEmpty || !blocked.isEmpty
        guard flushNow else { return (resumptions, .wait(until: earliestDeadline(after: due))) }
        let entries = queue.removeFirst(upTo: configuration.maxFlushRows, excluding: identitiesInFlight)
        guard !entries.isEmpty else {
            // Everything queued is a newer state of a row in flight: wait for that flush.
            return (resumptions, .wait(until: earliestDeadline(after: nil)))
        }
        nextFlushID += 1
        flights[nextFlushID] = entries
        rowsInFlight += entries.count
        for entry in entries { identitiesInFlight.insert(entry.record.identity) }
        return (resumptions, .flush(nextFlushID, entries.map(\.record)))
    }

    /// The flush `id` handed out by `tick` committed.
    mutating func flushSucceeded(_ id: FlushID, now: Instant) -> Resumptions {
        guard land(id) != nil else { return Resumptions() }
        consecutiveFailures = 0
        retryAt = nil
        lastError = nil
        return settle(now: now)
    }

    /// After rows left for good (committed, or dropped by a purge): everything older than the
    /// oldest row still queued or in flight is settled, blocked callers may find room, and
    /// drains may be over.
    private mutating func settle(now: Instant) -> Resumptions {
        var resumptions = Resumptions()
        durableThrough = max(durableThrough, oldestUnwrittenTicket - 1)
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

    /// The flush `id` handed out by `tick` failed: its rows go back among the queued ones, and
    /// no new flush starts before the backoff (10 ms, doubling, capped) has passed.
    mutating func flushFailed(_ id: FlushID, reason: String, now: Instant) -> Resumptions {
        guard var entries = land(id) else { return Resumptions() }
        let landed = entries.count
        // Rows of a tenant purged meanwhile are not retried: their tenant is gone.
        if !purgedTenants.isEmpty { entries.removeAll { purgedTenants.contains($0.record.key.tenant) } }
        queue.putBack(entries)
        consecutiveFailures += 1
        lastError = reason
        retryAt = now.advanced(by: backoff(afterFailures: consecutiveFailures))
        // Dropped rows may have been all that held the watermark back.
        return entries.count == landed ? Resumptions() : settle(now: now)
    }

    /// A tenant was deleted: its queued and blocked rows are dropped, and so are its rows
    /// enqueued later or coming back from a failed flush. Returns the flights that carry rows
    /// of it: they may still commit them, so the storage purge must wait until they land.
    /// Tickets whose rows were dropped count as settled: a waiter for one hears `true`, which
    /// reaches nobody, since the tenant's sessions are closed.
    mutating func purgeTenant(_ tenant: TenantID, now: Instant) -> (Resumptions, flightsToAwait: [FlushID]) {
        purgedTenants.insert(tenant)
        queue.removeAll { $0.key.tenant == tenant }
        for index in blocked.indices {
            let before = blocked[index].records.count
            blocked[index].records.removeAll { $0.key.tenant == tenant }
            blockedRowCount -= before - blocked[index].records.count
        }
        let flightsToAwait = flights.filter { $0.value.contains { $0.record.key.tenant == tenant } }.map(\.key).sorted()
        return (settle(now: now), flightsToAwait)
    }

    // MARK: Internals

    private var isSettled: Bool { queue.isEmpty && flights.isEmpty && blocked.isEmpty }

    /// Ends flight `id`: its rows may be taken by a new flight again.
    private mutating func land(_ id: FlushID) -> [Entry]? {
        guard let entries = flights.removeValue(forKey: id) else { return nil }
        rowsInFlight -= entries.count
        for entry in entries { identitiesInFlight.remove(entry.record.identity) }
        return entries
    }

    /// The oldest first ticket not yet committed (queued or in flight), or the next ticket.
    private var oldestUnwrittenTicket: UInt64 {
        var oldest = queue.first?.firstTicket ?? (lastTicket + 1)
        for entries in flights.values {
            if let first = entries.first?.firstTicket, first < oldest { oldest = first }
        }
        return oldest
    }

    private mutating func admit(_ records: [StoredRecord], now: Instant) -> FlushTicket {
        lastTicket += 1
        for record in records {
            queue.insert(record, ticket: lastTicket, now: now)
        }
        // A call with no rows (or whose rows are all older than what is durable) is durable
        // as soon as everything before it is.
        if records.isEmpty && queue.isEmpty && flights.isEmpty && durableThrough == lastTicket - 1 {
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
