import Tenancy
import TopGunCore

/// The logic of write-behind as a value: events in, actions out, no I/O and no clock of its
/// own (postgres-nio's connection state machines are the model). `WriteBehindQueue` feeds it
/// events and performs what it returns; tests drive it directly, instant by instant.
///
/// Durability is a watermark over tickets, kept per partition. Every `enqueue` gets the next
/// ticket, which names the partitions it touched; a queued row remembers the first ticket it
/// covers (`PendingRecordQueue`), and each partition counts the first tickets of its rows not
/// yet written (`UnwrittenTickets`). A ticket is durable once none of its partitions has an
/// unwritten row at or below it. One flush still spans every partition (a group commit), but
/// a partition can be drained, or fenced (its rows no longer written by this node), on its
/// own, and a partition whose rows wait holds back only the acknowledgements that touched it.
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
        /// Drain waiters (of the whole queue or of one partition) and whether what they
        /// waited for was written.
        var drained: [(WaiterID, Bool)] = []

        var isEmpty: Bool { durable.isEmpty && admitted.isEmpty && drained.isEmpty }

        mutating func append(_ other: Resumptions) {
            durable += other.durable
            admitted += other.admitted
            drained += other.drained
        }

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

    /// What fencing a partition took away from the queue.
    struct Fence: Equatable {
        var resumptions: Resumptions
        /// The partition's rows that were queued or waiting for room: merged in memory, never
        /// to be written by this node.
        var dropped: [StoredRecord]
        /// Flushes carrying rows of the partition, which may still commit them; once they
        /// have landed, `takeFencedLeftovers` returns those that did not.
        var flightsToAwait: [FlushID]
    }

    private struct DurabilityWaiter {
        var id: WaiterID
        var ticket: FlushTicket
        var deadline: Instant
    }

    private struct BlockedEnqueue {
        var id: WaiterID
        var records: [StoredRecord]
        var partitions: PartitionSet
        /// Partitions whose rows of this call a fence dropped: its ticket, issued only when it
        /// is admitted (perhaps after an unfence), must count as lost in them.
        var lost: PartitionSet
    }

    private struct DrainWaiter {
        var id: WaiterID
        var deadline: Instant
        /// Nil: the whole queue.
        var partition: Int?
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
    /// Per partition, the first tickets of its rows queued or in flight.
    private var unwritten = [UnwrittenTickets](repeating: UnwrittenTickets(), count: PartitionFunction.partitionCount)
    private var blocked: [BlockedEnqueue] = []
    private var blockedRowCount = 0
    private var lastTicket: UInt64 = 0
    private var durableThrough: UInt64 = 0
    /// Sorted by ticket, so that the global watermark resolves a prefix.
    private var durabilityWaiters: [DurabilityWaiter] = []
    private var earliestWaiterDeadline: Instant?
    private var drainWaiters: [DrainWaiter] = []
    private var consecutiveFailures = 0
    private var retryAt: Instant?
    private var lastError: String?
    /// Deleted tenants: none of their rows is written again (a deletion is final), so that no
    /// flush can bring back rows the storage purge removed.
    private var purgedTenants = Set<TenantID>()
    /// Partitions this node no longer writes (another node owns them now).
    private var fenced = PartitionSet()
    /// Per partition, the tickets whose rows of it a fence dropped (the last range is open,
    /// up to `UInt64.max`, while the fence holds): a waiter for one of them hears false, however
    /// late it asks. One range per fence: a partition is fenced when it moves to another
    /// node, which is rare, so they are kept.
    private var lostTickets: [Int: [Range<UInt64>]] = [:]
    /// Rows of fenced partitions that came back from failed flushes.
    private var fencedLeftovers: [Int: [StoredRecord]] = [:]

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
            durableThrough: durableThrough,
            lastTicket: lastTicket,
            fencedPartitions: fenced
        )
    }

    /// Flushes handed out and not yet reported, oldest first.
    var flushesInFlight: [FlushID] { flights.keys.sorted() }

    /// Rows of `partition` queued or being flushed.
    func unwrittenCount(inPartition partition: Int) -> Int { unwritten[partition].count }

    /// Whether every write of `ticket`'s partitions up to it is committed: nil while some
    /// row is not, false when a fence dropped some of them (they will never be).
    func isDurable(_ ticket: FlushTicket) -> Bool? {
        guard ticket.sequence <= lastTicket else { return false }
        return answer(for: ticket)
    }

    /// Rows that count against `maxPending`: queued and being flushed.
    private var unsettledCount: Int { queue.count + rowsInFlight }

    // MARK: Events

    /// A caller hands over rows (the merged CRDT states of one operation batch) and the
    /// partitions of every op in the batch, including ops that changed nothing (an idempotent
    /// re-send waits for the flush of the first send). No partition at all means every one.
    mutating func enqueue(_ records: [StoredRecord], touching touched: PartitionSet = PartitionSet(), id: WaiterID, now: Instant) -> EnqueueAction {
        var partitions = touched
        for record in records { partitions.insert(record.partition) }
        if partitions.isEmpty { partitions = .all }
        // A write of a deleted tenant that raced its purge (merged in memory before its
        // session closed) is not persisted, nor is one to a partition fenced meanwhile.
        var records = records
        var lost = PartitionSet()
        if !purgedTenants.isEmpty || !fenced.isEmpty {
            records.removeAll { record in
                if fenced.contains(record.partition) {
                    lost.insert(record.partition)
                    return true
                }
                return purgedTenants.contains(record.key.tenant)
            }
        }
        // FIFO: once anyone waits for room, later callers wait behind them.
        if !blocked.isEmpty || unsettledCount >= configuration.maxPending {
            blocked.append(BlockedEnqueue(id: id, records: records, partitions: partitions, lost: lost))
            blockedRowCount += records.count
            return .suspend
        }
        let wasEmpty = queue.isEmpty
        let before = queue.count
        let ticket = admit(records, partitions: partitions, lost: lost, now: now)
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
        return admit(waiter.records, partitions: waiter.partitions, lost: waiter.lost, now: now)
    }

    /// A caller waits for `ticket` to become durable, until `deadline`.
    mutating func waitUntilDurable(_ ticket: FlushTicket, id: WaiterID, deadline: Instant, now: Instant) -> WaitAction {
        // A ticket this queue never issued will never resolve.
        guard ticket.sequence <= lastTicket else { return .resolved(false) }
        if let answer = answer(for: ticket) { return .resolved(answer) }
        if deadline <= now { return .resolved(false) }
        let waiter = DurabilityWaiter(id: id, ticket: ticket, deadline: deadline)
        if let last = durabilityWaiters.last, last.ticket.sequence > ticket.sequence {
            let index = durabilityWaiters.partitioningIndex { $0.ticket.sequence > ticket.sequence }
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

    /// Someone asks for everything (or every row of one `partition`) to be flushed now, and
    /// to hear when nothing of it is left to write, or `deadline` passed. Returns the answer
    /// at once when there is nothing to wait for. A partition keeps taking writes while it
    /// drains: stop them first (the router) when the drain must end.
    mutating func drain(partition: Int? = nil, id: WaiterID, deadline: Instant, now: Instant) -> Bool? {
        if let partition {
            if fenced.contains(partition) { return false }
            if isSettled(partition) { return true }
        } else if isSettled {
            return true
        }
        if deadline <= now { return false }
        drainWaiters.append(DrainWaiter(id: id, deadline: deadline, partition: partition))
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
            if flights.isEmpty { resumptions.drained += finishDrains() }
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
        guard let entries = land(id) else { return Resumptions() }
        for entry in entries { unwritten[entry.record.partition].remove(entry.firstTicket) }
        consecutiveFailures = 0
        retryAt = nil
        lastError = nil
        return settle(now: now)
    }

    /// The flush `id` committed every row except those of `refused`: partitions the storage
    /// says this node no longer owns under the epoch it flushed with (another node took them
    /// over). Those partitions are fenced here as by `fence`: their rows of this flush and
    /// those still queued are returned, to be handed to the new owner, and every waiter for
    /// them hears false. Rows of other partitions count as committed.
    mutating func flushCommitted(_ id: FlushID, refusing refused: PartitionSet, now: Instant) -> (Resumptions, displaced: [StoredRecord]) {
        guard !refused.isEmpty else { return (flushSucceeded(id, now: now), []) }
        var resumptions = Resumptions()
        var displaced: [StoredRecord] = []
        // Fenced before the flight lands: its rows still count as unwritten, so the lost
        // tickets start no later than theirs.
        for partition in refused {
            let fence = fence(partition, now: now)
            resumptions.append(fence.resumptions)
            displaced += fence.dropped
        }
        guard let entries = land(id) else { return (resumptions, displaced) }
        for entry in entries {
            unwritten[entry.record.partition].remove(entry.firstTicket)
            if refused.contains(entry.record.partition) { displaced.append(entry.record) }
        }
        for partition in refused { displaced += takeFencedLeftovers(partition) }
        consecutiveFailures = 0
        retryAt = nil
        lastError = nil
        resumptions.append(settle(now: now))
        return (resumptions, withoutPurgedTenants(displaced))
    }

    /// After rows left for good (committed, or dropped by a purge or a fence): a partition's
    /// tickets older than its oldest row still queued or in flight are settled, blocked
    /// callers may find room, and drains may be over.
    private mutating func settle(now: Instant) -> Resumptions {
        var resumptions = Resumptions()
        durableThrough = max(durableThrough, oldestUnwrittenTicket - 1)
        if !durabilityWaiters.isEmpty {
            var kept: [DurabilityWaiter] = []
            for waiter in durabilityWaiters {
                if let answer = answer(for: waiter.ticket) {
                    resumptions.durable.append((waiter.id, answer))
                } else {
                    kept.append(waiter)
                }
            }
            if kept.count != durabilityWaiters.count {
                durabilityWaiters = kept
                earliestWaiterDeadline = kept.lazy.map(\.deadline).min()
            }
        }
        // Room freed: let blocked callers in, oldest first.
        while let next = blocked.first, unsettledCount < configuration.maxPending {
            blocked.removeFirst()
            blockedRowCount -= next.records.count
            resumptions.admitted.append((next.id, admit(next.records, partitions: next.partitions, lost: next.lost, now: now)))
        }
        resumptions.drained = finishDrains()
        return resumptions
    }

    /// The flush `id` handed out by `tick` failed: its rows go back among the queued ones, and
    /// no new flush starts before the backoff (10 ms, doubling, capped) has passed.
    mutating func flushFailed(_ id: FlushID, reason: String, now: Instant) -> Resumptions {
        guard var entries = land(id) else { return Resumptions() }
        let landed = entries.count
        // Rows of a tenant purged meanwhile are not retried: their tenant is gone; nor are
        // rows of a partition fenced meanwhile: they are left for the fence's caller.
        if !purgedTenants.isEmpty || !fenced.isEmpty {
            entries.removeAll { entry in
                let record = entry.record
                if purgedTenants.contains(record.key.tenant) {
                    unwritten[record.partition].remove(entry.firstTicket)
                    return true
                }
                if fenced.contains(record.partition) {
                    unwritten[record.partition].remove(entry.firstTicket)
                    fencedLeftovers[record.partition, default: []].append(record)
                    return true
                }
                return false
            }
        }
        // A queued newer state of a failed row takes the failed row's place and first ticket.
        let superseded = queue.putBack(entries)
        for entry in superseded {
            unwritten[entry.record.partition].remove(entry.firstTicket)
        }
        consecutiveFailures += 1
        lastError = reason
        retryAt = now.advanced(by: backoff(afterFailures: consecutiveFailures))
        // Dropped rows may have been all that held the watermark back, and rows merged into
        // their failed versions leave room for blocked callers.
        return entries.count == landed && superseded.isEmpty ? Resumptions() : settle(now: now)
    }

    /// A tenant was deleted: its queued and blocked rows are dropped, and so are its rows
    /// enqueued later or coming back from a failed flush. Returns the flights that carry rows
    /// of it: they may still commit them, so the storage purge must wait until they land.
    /// Tickets whose rows were dropped count as settled: a waiter for one hears `true`, which
    /// reaches nobody, since the tenant's sessions are closed.
    mutating func purgeTenant(_ tenant: TenantID, now: Instant) -> (Resumptions, flightsToAwait: [FlushID]) {
        purgedTenants.insert(tenant)
        for (partition, rows) in fencedLeftovers {
            fencedLeftovers[partition] = rows.filter { $0.key.tenant != tenant }
        }
        for entry in queue.removeAll(where: { $0.key.tenant == tenant }) {
            unwritten[entry.record.partition].remove(entry.firstTicket)
        }
        for index in blocked.indices {
            let before = blocked[index].records.count
            blocked[index].records.removeAll { $0.key.tenant == tenant }
            blockedRowCount -= before - blocked[index].records.count
        }
        let flightsToAwait = flights.filter { $0.value.contains { $0.record.key.tenant == tenant } }.map(\.key).sorted()
        return (settle(now: now), flightsToAwait)
    }

    /// This node stops writing `partition` (it is no longer its owner, or no longer under the
    /// epoch it flushes with): its queued and blocked rows are dropped and returned, rows of
    /// it enqueued later are dropped too, and every waiter for a write of it not yet committed
    /// hears false at once, so that no acknowledgement waits for rows that will never be
    /// written. Flushes already carrying its rows may still commit them. Idempotent.
    mutating func fence(_ partition: Int, now: Instant) -> Fence {
        let flightsToAwait = flights.filter { $0.value.contains { $0.record.partition == partition } }.map(\.key).sorted()
        guard !fenced.contains(partition) else {
            return Fence(resumptions: Resumptions(), dropped: [], flightsToAwait: flightsToAwait)
        }
        fenced.insert(partition)
        let firstLost = unwritten[partition].oldest ?? (lastTicket + 1)
        var ranges = lostTickets[partition, default: []]
        if let last = ranges.last, last.upperBound >= firstLost {
            // Fenced again before anything newer was written: one range covers both.
            ranges[ranges.count - 1] = min(last.lowerBound, firstLost)..<UInt64.max
        } else {
            ranges.append(firstLost..<UInt64.max)
        }
        lostTickets[partition] = ranges
        var dropped: [StoredRecord] = []
        for entry in queue.removeAll(where: { $0.partition == partition }) {
            unwritten[partition].remove(entry.firstTicket)
            dropped.append(entry.record)
        }
        for index in blocked.indices {
            let before = blocked[index].records.count
            blocked[index].records.removeAll { record in
                guard record.partition == partition else { return false }
                dropped.append(record)
                return true
            }
            if blocked[index].records.count != before { blocked[index].lost.insert(partition) }
            blockedRowCount -= before - blocked[index].records.count
        }
        // Whoever waited for the partition to drain hears that it will not be written.
        let undrained = drainWaiters.filter { $0.partition == partition }.map { ($0.id, false) }
        drainWaiters.removeAll { $0.partition == partition }
        var resumptions = settle(now: now)
        resumptions.drained += undrained
        return Fence(resumptions: resumptions, dropped: dropped, flightsToAwait: flightsToAwait)
    }

    /// Rows of fenced `partition` that came back from flushes that failed after the fence.
    mutating func takeFencedLeftovers(_ partition: Int) -> [StoredRecord] {
        fencedLeftovers.removeValue(forKey: partition) ?? []
    }

    /// `records` without those of deleted tenants (a fence's rows, handed over after a purge).
    func withoutPurgedTenants(_ records: [StoredRecord]) -> [StoredRecord] {
        purgedTenants.isEmpty ? records : records.filter { !purgedTenants.contains($0.key.tenant) }
    }

    /// `partition` is written by this node again (it owns it again, under a new epoch), from
    /// the next ticket on; waiters for tickets issued while it was fenced still hear false.
    mutating func unfence(_ partition: Int) {
        guard fenced.contains(partition) else { return }
        fenced.remove(partition)
        if var ranges = lostTickets[partition], let open = ranges.last {
            ranges[ranges.count - 1] = open.lowerBound..<max(open.lowerBound, lastTicket + 1)
            lostTickets[partition] = ranges
        }
        // Leftovers of flights that failed after the fence stay for the fence's caller, who
        // may still be waiting for those flights.
    }

    // MARK: Internals

    private var isSettled: Bool { queue.isEmpty && flights.isEmpty && blocked.isEmpty }

    /// Nothing of `partition` is queued, in flight or waiting for room.
    private func isSettled(_ partition: Int) -> Bool {
        unwritten[partition].isEmpty && !blocked.contains { $0.records.contains { $0.partition == partition } }
    }

    /// Whether `ticket` is durable: false when a fence dropped rows it covers, true when every
    /// one of its partitions has written everything up to it, nil while one has not.
    private func answer(for ticket: FlushTicket) -> Bool? {
        if !lostTickets.isEmpty {
            for (partition, ranges) in lostTickets where ticket.partitions.contains(partition) {
                if ranges.contains(where: { $0.contains(ticket.sequence) }) { return false }
            }
        }
        if ticket.sequence <= durableThrough { return true }
        for partition in ticket.partitions {
            if let oldest = unwritten[partition].oldest, oldest <= ticket.sequence { return nil }
        }
        return true
    }

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

    private mutating func admit(_ records: [StoredRecord], partitions: PartitionSet, lost: PartitionSet = PartitionSet(), now: Instant) -> FlushTicket {
        lastTicket += 1
        // A fence dropped rows of this call: its ticket is lost in those partitions, whenever
        // it is issued (an unfence may have closed the fence's range meanwhile).
        for partition in lost where !(lostTickets[partition]?.contains { $0.contains(lastTicket) } ?? false) {
            lostTickets[partition, default: []].append(lastTicket..<(lastTicket + 1))
        }
        for record in records where queue.insert(record, ticket: lastTicket, now: now) {
            unwritten[record.partition].insert(lastTicket)
        }
        // A call with no rows (or whose rows are all older than what is durable) is durable
        // as soon as everything before it is.
        if records.isEmpty && queue.isEmpty && flights.isEmpty && durableThrough == lastTicket - 1 {
            durableThrough = lastTicket
        }
        return FlushTicket(sequence: lastTicket, partitions: partitions)
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

    /// Drain waiters whose queue or partition has nothing left to write.
    private mutating func finishDrains() -> [(WaiterID, Bool)] {
        guard !drainWaiters.isEmpty else { return [] }
        let settled = isSettled
        var finished: [(WaiterID, Bool)] = []
        var waiting: [DrainWaiter] = []
        for waiter in drainWaiters {
            if waiter.partition.map({ isSettled($0) }) ?? settled {
                finished.append((waiter.id, true))
            } else {
                waiting.append(waiter)
            }
        }
        drainWaiters = waiting
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
