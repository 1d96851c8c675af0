import Logging
import ServiceLifecycle
import Tenancy
import TopGunCore

/// Write-behind between the in-memory partitions and the `ServerStorage`: the heart of
/// durability (design.md §3 step 6, §4).
///
/// The partition engine hands over merged rows with `enqueue` and, for a PERSISTED write,
/// waits for its ticket with `waitUntilDurable` before acknowledging. Rows of the same
/// (tenant, kind, map, key) coalesce while they wait; everything pending goes to the storage
/// in one `store()` call (a group commit) when `maxBatch` rows are pending or the oldest has
/// waited `flushInterval`, and up to `maxConcurrentFlushes` such calls overlap, on disjoint
/// rows. A failed flush keeps its rows and is retried with exponential backoff while newer
/// writes keep coalescing; when `maxPending` rows are outstanding, `enqueue` waits for room.
/// The logic is `WriteBehindStateMachine`; this actor only performs what it decides: calls
/// to the storage, a timer, resuming callers.
///
/// One queue serves every partition of a node: a group commit across partitions is what
/// makes PERSISTED cheap (271 per-partition queues would mean many small transactions). Its
/// durability is kept per partition all the same: a ticket names the partitions it touched
/// and resolves as soon as they are written, and a partition can be drained (`drain(partition:)`)
/// or fenced (`fence`) on its own, which is what moving a partition to another node needs.
///
/// Flushing happens while `run()` runs (a `Service`: at a graceful shutdown it drains, then
/// returns) or while someone `drain`s. It is also the node's `DurabilityPipeline`.
public actor WriteBehindQueue: Service {
    public nonisolated let storage: any ServerStorage
    public nonisolated let configuration: WriteBehindConfiguration

    private typealias Machine = WriteBehindStateMachine<ContinuousClock.Instant>
    private var machine: Machine
    private let clock = ContinuousClock()
    private let logger: Logger

    private var nextWaiterID: UInt64 = 0
    private var enqueueWaiters: [UInt64: CheckedContinuation<FlushTicket, Never>] = [:]
    private var durabilityWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
    private var drainWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]

    /// Whether flushes may start: `run()` is running, or a drain is under way.
    private var isRunning = false
    /// `stop()` was called or `run()` cancelled: `run()` does not start again.
    private var isStopped = false
    private var runWaiter: CheckedContinuation<Void, Never>?
    private var activeDrains = 0
    private var timer: Task<Void, Never>?
    private var timerDeadline: ContinuousClock.Instant?
    private var flushTasks: [UInt64: Task<Void, Never>] = [:]

    /// What each flush claims, on a node of a cluster (nil: the node writes alone).
    private let claims: (any OwnershipClaims)?
    /// Receives the rows of partitions the storage refused (another node owns them now).
    private let displaced: (@Sendable ([StoredRecord]) async -> Void)?

    /// - Parameters:
    ///   - claims: on a node of a cluster, the ownership each flush asserts; the storage
    ///     writes only the partitions it still holds.
    ///   - displaced: where the rows of partitions the storage refused go (the cluster hands
    ///     them to the new owner, where they merge); those partitions are fenced here.
    public init(
        storage: any ServerStorage, configuration: WriteBehindConfiguration = WriteBehindConfiguration(),
        claims: (any OwnershipClaims)? = nil, displaced: (@Sendable ([StoredRecord]) async -> Void)? = nil,
        logger: Logger = Logger(label: "topgun.write-behind")
    ) {
        self.storage = storage
        self.claims = claims
        self.displaced = displaced
        self.configuration = configuration
        self.machine = Machine(configuration: configuration)
        self.logger = logger
    }

    // MARK: Writers

    /// Queues `records` (replacing queued records of the same rows) and returns the ticket
    /// to wait on. Suspends while the queue is full (back-pressure); a caller cancelled while
    /// suspended is admitted anyway, since its rows are already merged in memory.
    ///
    /// `partitions` are those of every op of the batch, changed or not, so that an
    /// idempotent re-send waits for the rows of its first send; the records' own partitions
    /// are added. With neither, the ticket waits for every partition.
    ///
    /// Records should be valid (`StoredRecord.validate()`): an invalid one is dropped here,
    /// with an error logged, because a row the database refuses would fail every group
    /// commit it is part of.
    public func enqueue(_ records: [StoredRecord], touching partitions: PartitionSet) async -> FlushTicket {
        let records = Self.validRecords(records, logger: logger)
        let id = makeWaiterID()
        switch machine.enqueue(records, touching: partitions, id: id, now: clock.now) {
        case .admitted(let ticket, let wake):
            if wake { reconcile() }
            return ticket
        case .suspend:
            // The machine now names `id` as blocked; nothing runs on this actor before the
            // continuation is stored (no suspension point in between).
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    enqueueWaiters[id] = continuation
                    // A full queue wants a flush as soon as possible.
                    reconcile()
                }
            } onCancel: {
                Task { await self.cancelEnqueue(id) }
            }
        }
    }

    /// Waits until every record enqueued up to `ticket` is committed: true then, false when
    /// `timeout` passes first or the calling task is cancelled (the caller then must not
    /// acknowledge the write as PERSISTED).
    public func waitUntilDurable(_ ticket: FlushTicket, timeout: Duration) async -> Bool {
        let id = makeWaiterID()
        let now = clock.now
        switch machine.waitUntilDurable(ticket, id: id, deadline: now.advanced(by: timeout), now: now) {
        case .resolved(let durable):
            return durable
        case .suspend(let wake):
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    durabilityWaiters[id] = continuation
                    if wake { reconcile() }
                }
            } onCancel: {
                Task { await self.cancelDurabilityWait(id) }
            }
        }
    }

    /// Whether `ticket` is durable now, without waiting.
    public func isDurable(_ ticket: FlushTicket) -> Bool {
        machine.isDurable(ticket) ?? false
    }

    /// Rows of `partition` queued or being flushed.
    public func unwrittenCount(inPartition partition: Int) -> Int {
        machine.unwrittenCount(inPartition: partition)
    }

    /// Deletes every row of `tenant` for good (a deleted tenant): its pending rows are dropped,
    /// its later writes are not persisted, and once no flush carrying its rows is under way
    /// (one could commit them after the delete), its stored rows are deleted. Idempotent;
    /// throws when the storage delete fails, and may be called again.
    public func purgeTenant(_ tenant: TenantID) async throws {
        let (resumptions, flights) = machine.purgeTenant(tenant, now: clock.now)
        resume(resumptions)
        reconcile()
        // A flush's task reports to the machine before it ends, so once it has ended the
        // flight has landed (and a failed one did not requeue the tenant's rows).
        for id in flights { await flushTasks[id]?.value }
        try await storage.deleteTenant(tenant)
    }

    // MARK: Partitions

    /// Flushes `partition`'s rows now and returns true once none is queued, in flight or
    /// waiting for room, or false when `timeout` passes first or the partition is fenced
    /// meanwhile. Other partitions' rows ride along in the same group commits. Writes to the
    /// partition should be stopped first (the router): a partition that keeps taking writes
    /// may not drain before the timeout.
    public func drain(partition: Int, timeout: Duration) async -> Bool {
        await awaitDrain(of: partition, timeout: timeout)
    }

    /// Drains one partition, or everything (nil), working whether or not `run()` runs.
    private func awaitDrain(of partition: Int?, timeout: Duration) async -> Bool {
        let id = makeWaiterID()
        activeDrains += 1
        defer {
            activeDrains -= 1
            if activeDrains == 0 && !isRunning { stopTimer() }
        }
        return await withCheckedContinuation { continuation in
            let now = clock.now
            if let answer = machine.drain(partition: partition, id: id, deadline: now.advanced(by: timeout), now: now) {
                continuation.resume(returning: answer)
            } else {
                drainWaiters[id] = continuation
                reconcile()
            }
        }
    }

    /// Stops writing `partition`: another node owns it now, or owns it under a newer epoch.
    /// Its pending rows are dropped, later rows of it too, and every acknowledgement still
    /// waiting for one of them is released with "not durable" (the client sends the write
    /// again, to the new owner). Returns once no flush that could still commit its rows is
    /// under way, with the rows it dropped: merged states that the caller may hand to the new
    /// owner (a CRDT merge there loses nothing). Idempotent; `unfence` undoes it.
    public func fence(partition: Int) async -> [StoredRecord] {
        let fence = machine.fence(partition, now: clock.now)
        resume(fence.resumptions)
        reconcile()
        // A flush's task reports to the machine before it ends, so once it has ended the
        // flight has landed, and its rows were either committed or left over.
        for id in fence.flightsToAwait { await flushTasks[id]?.value }
        // A tenant deleted meanwhile is not handed over.
        return machine.withoutPurgedTenants(fence.dropped + machine.takeFencedLeftovers(partition))
    }

    /// This node writes `partition` again (it owns it again), from the next enqueue on.
    public func unfence(partition: Int) {
        machine.unfence(partition)
    }

    // MARK: Lifecycle

    /// Pending rows, health and tickets, for `/ready` and `/metrics`.
    public var status: WriteBehindStatus { machine.status }

    /// Flushes while it runs, until its task is cancelled, `stop()` is called or a graceful
    /// shutdown (service lifecycle) is triggered; the last two drain first
    /// (`configuration.drainTimeout`). Cancelled, it stops at once: what is pending stays in
    /// memory.
    public func run() async {
        guard !isRunning, !isStopped else { return }
        isRunning = true
        reconcile()
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    runWaiter = continuation
                }
            } onCancel: {
                Task { await self.endRun() }
            }
        } onGracefulShutdown: {
            Task { await self.stop() }
        }
        isRunning = false
        if activeDrains == 0 { stopTimer() }
    }

    /// Drains (`configuration.drainTimeout`), then ends `run()`; the queue flushes no more
    /// after that except through `drain`. Returns whether everything was written.
    @discardableResult
    public func stop() async -> Bool {
        let drained = await drain(timeout: configuration.drainTimeout)
        if !drained {
            logger.error("write-behind queue not drained at shutdown", metadata: ["pending": "\(machine.status.pendingCount)"])
        }
        endRun()
        return drained
    }

    private func endRun() {
        isStopped = true
        runWaiter?.resume()
        runWaiter = nil
    }

    /// Flushes everything now and returns true once nothing is pending, or false when
    /// `timeout` passes first (the storage keeps failing). Works whether or not `run()` runs.
    public func drain(timeout: Duration) async -> Bool {
        await awaitDrain(of: nil, timeout: timeout)
    }

    // MARK: Performing the machine's decisions

    /// Asks the machine what to do now and does it: resume callers, start a flush, set the
    /// timer for the next deadline.
    private func reconcile() {
        guard isRunning || activeDrains > 0 else { return }
        while true {
            let (resumptions, next) = machine.tick(now: clock.now)
            resume(resumptions)
            switch next {
            case .flush(let id, let records):
                startFlush(id, records)
            case .wait(let deadline):
                setTimer(deadline)
                return
            }
        }
    }

    private func startFlush(_ id: UInt64, _ records: [StoredRecord]) {
        let storage = self.storage
        let timeout = configuration.storeTimeout
        let claim = claims?.claim(for: PartitionSet(records.lazy.map(\.partition)))
        flushTasks[id] = Task {
            let outcome: Result<PartitionSet, any Error>
            do {
                outcome = .success(try await withStorageTimeout(timeout) {
                    if let claim { return try await storage.store(records, claiming: claim) }
                    try await storage.store(records)
                    return PartitionSet()
                })
            } catch {
                outcome = .failure(error)
            }
            self.flushFinished(id, outcome: outcome, rows: records.count)
        }
    }

    private func flushFinished(_ id: UInt64, outcome: Result<PartitionSet, any Error>, rows: Int) {
        flushTasks[id] = nil
        let now = clock.now
        if case .success(let refused) = outcome, !refused.isEmpty {
            let (resumptions, displacedRows) = machine.flushCommitted(id, refusing: refused, now: now)
            resume(resumptions)
            reconcile()
            logger.warning("partitions not written: another node owns them now", metadata: [
                "partitions": "\(refused)", "displacedRows": "\(displacedRows.count)",
            ])
            // The flight has landed; handing the rows over may take a while, and is not the
            // flusher's business.
            if let displaced, !displacedRows.isEmpty { Task { await displaced(displacedRows) } }
            return
        }
        if case .failure(let error) = outcome {
            let failure = String(describing: error)
            let failures = machine.status.consecutiveFailures + 1
            // Log the first failure and then every tenth, not every 10 ms retry.
            if failures == 1 || failures % 10 == 0 {
                logger.error("write-behind flush failed; retrying", metadata: ["rows": "\(rows)", "failures": "\(failures)", "error": "\(failure)"])
            }
            resume(machine.flushFailed(id, reason: failure, now: now))
        } else {
            if machine.status.consecutiveFailures > 0 {
                logger.notice("write-behind flush succeeded again", metadata: ["rows": "\(rows)"])
            }
            resume(machine.flushSucceeded(id, now: now))
        }
        reconcile()
    }

    private func resume(_ resumptions: Machine.Resumptions) {
        for (id, durable) in resumptions.durable {
            durabilityWaiters.removeValue(forKey: id)?.resume(returning: durable)
        }
        for (id, ticket) in resumptions.admitted {
            enqueueWaiters.removeValue(forKey: id)?.resume(returning: ticket)
        }
        for (id, drained) in resumptions.drained {
            drainWaiters.removeValue(forKey: id)?.resume(returning: drained)
        }
    }

    private func setTimer(_ deadline: ContinuousClock.Instant?) {
        guard deadline != timerDeadline else { return }
        timer?.cancel()
        timerDeadline = deadline
        guard let deadline else {
            timer = nil
            return
        }
        timer = Task {
            do {
                try await Task.sleep(until: deadline, clock: .continuous)
            } catch {
                return  // replaced by another timer
            }
            self.timerFired(deadline)
        }
    }

    private func timerFired(_ deadline: ContinuousClock.Instant) {
        guard deadline == timerDeadline else { return }
        timer = nil
        timerDeadline = nil
        reconcile()
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    private func cancelEnqueue(_ id: UInt64) {
        if let ticket = machine.enqueueCancelled(id: id, now: clock.now) {
            enqueueWaiters.removeValue(forKey: id)?.resume(returning: ticket)
            reconcile()
        }
    }

    private func cancelDurabilityWait(_ id: UInt64) {
        if machine.durabilityWaitCancelled(id: id) {
            durabilityWaiters.removeValue(forKey: id)?.resume(returning: false)
        }
    }

    private func makeWaiterID() -> UInt64 {
        nextWaiterID += 1
        return nextWaiterID
    }

    private static func validRecords(_ records: [StoredRecord], logger: Logger) -> [StoredRecord] {
        var valid = records
        valid.removeAll { record in
            do {
                try record.validate()
                return false
            } catch {
                logger.error("write-behind dropped a record that cannot be stored", metadata: [
                    "tenant": "\(record.key.tenant)", "map": "\(record.key.mapName)", "error": "\(error)",
                ])
                return true
            }
        }
        return valid
    }
}
