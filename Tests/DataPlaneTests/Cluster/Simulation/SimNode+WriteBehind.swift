@testable import DataPlane
import TopGunCore

/// `WriteBehindQueue`: performs what the production `WriteBehindStateMachine` decides —
/// flushes to the database under the node's ownership claim, a timer, resuming waiters.
extension SimNode {
    func enqueueWriteBehind(_ records: [StoredRecord], touching partitions: PartitionSet) -> FlushTicket {
        nextWaiter += 1
        switch writeBehind.enqueue(records, touching: partitions, id: nextWaiter, now: SimInstant(ms: now)) {
        case .admitted(let ticket, let wake):
            if wake { reconcileWriteBehind() }
            return ticket
        case .suspend:
            // `maxPending` (100,000 rows) is far beyond what a simulation queues.
            preconditionFailure("the simulated write-behind queue filled up")
        }
    }

    func waitDurable(_ ticket: FlushTicket, timeoutMs: Int64, purpose: WaitPurpose) {
        nextWaiter += 1
        let waiter = nextWaiter
        switch writeBehind.waitUntilDurable(ticket, id: waiter, deadline: SimInstant(ms: now + timeoutMs), now: SimInstant(ms: now)) {
        case .resolved(let durable):
            resolve(purpose, durable)
        case .suspend(let wake):
            waiterPurposes[waiter] = purpose
            if wake { reconcileWriteBehind() }
        }
    }

    /// `reconcile`: asks the machine what to do now and does it.
    func reconcileWriteBehind() {
        if reconciling {
            reconcileAgain = true
            return
        }
        reconciling = true
        repeat {
            reconcileAgain = false
            ticking: while true {
                let (resumptions, next) = writeBehind.tick(now: SimInstant(ms: now))
                resume(resumptions)
                switch next {
                case .flush(let flush, let records): startFlush(flush, records)
                case .wait(let deadline):
                    setWriteBehindTimer(deadline?.ms)
                    break ticking
                }
            }
        } while reconcileAgain
        reconciling = false
        drainResolutions()
    }

    private func startFlush(_ flush: UInt64, _ records: [StoredRecord]) {
        // The claim is taken when the flush starts, from the table installed then.
        let claim = claims.claim(for: PartitionSet(records.lazy.map(\.partition)))!
        flushCalls[flush] = call(database: .store(records, claim), continuation: .flush(id: flush), timeout: settings.storeTimeoutMs)
    }

    func flushFinished(_ flush: UInt64, _ result: SimResult) {
        flushCalls[flush] = nil
        let instant = SimInstant(ms: now)
        switch result {
        case .refused(let refused) where !refused.isEmpty:
            let (resumptions, displaced) = writeBehind.flushCommitted(flush, refusing: refused, now: instant)
            resume(resumptions)
            reconcileWriteBehind()
            world.log("\(id) flush refused for partitions \(refused): \(displaced.count) rows displaced")
            if !displaced.isEmpty { handOverDisplaced(displaced) }
        case .refused:
            resume(writeBehind.flushSucceeded(flush, now: instant))
            reconcileWriteBehind()
        default:
            resume(writeBehind.flushFailed(flush, reason: "database unreachable", now: instant))
            reconcileWriteBehind()
        }
        flightLanded(flush)
    }

    private func setWriteBehindTimer(_ deadline: Int64?) {
        guard deadline != writeBehindTimer else { return }
        writeBehindTimer = deadline
        if let deadline { world.schedule(.timer(node: index, generation: generation, .writeBehind(deadline: deadline)), at: max(deadline, now)) }
    }

    func writeBehindTimerFired(_ deadline: Int64) {
        guard deadline == writeBehindTimer else { return }
        writeBehindTimer = nil
        reconcileWriteBehind()
    }

    func resume(_ resumptions: WriteBehindStateMachine<SimInstant>.Resumptions) {
        for (waiter, durable) in resumptions.durable {
            if let purpose = waiterPurposes.removeValue(forKey: waiter) { deferredResolutions.append((purpose, durable)) }
        }
        if !reconciling { drainResolutions() }
    }

    func drainResolutions() {
        while !deferredResolutions.isEmpty {
            let (purpose, durable) = deferredResolutions.removeFirst()
            resolve(purpose, durable)
        }
    }
}
