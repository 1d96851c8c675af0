@testable import DataPlane
import TopGunCore

/// `ClusterMembershipService` and `ClusterJoin`: the lease (taken, renewed every heartbeat,
/// taken again under a new incarnation when lost), the coordinator (the holder of the lock
/// runs `MigrationPlanner` every quarter heartbeat and publishes by compare-and-set), and
/// following the published table (polled every heartbeat, on `NOTIFY`, and every 50 ms until
/// the node serves), ignoring tables computed for a previous run of the node.
extension SimNode {
    // MARK: Start and lease

    /// `ClusterJoin.start`: take the lease (waiting out a previous run's), then run.
    func start() {
        acquire()
    }

    func acquire() {
        call(database: .acquire(lease), continuation: .acquire)
    }

    func acquired(_ result: SimResult) {
        let taken: Bool
        if case .bool(true) = result { taken = true } else { taken = false }
        if !joined {
            // The first join retries until it succeeds (a node that cannot join exits and is
            // started again by its supervisor: the same thing, seen from the cluster).
            guard taken else { return timer(after: settings.heartbeatMs / 2, .acquireRetry) }
            joined = true
            // `ClusterAssembly`: the lease was just taken (`ClusterJoin.start`).
            leaseWatch.renewed()
            world.log("\(id) joined as \(lease.incarnation)")
            // `waitUntilServing`: the client endpoints go into the lease once bound.
            lease.websocketURL = "ws://\(id)/ws"
            lease.httpURL = "http://\(id)"
            call(database: .renew(lease), continuation: .renew(heartbeat: false))
            timer(after: settings.heartbeatMs, .heartbeat)
            timer(after: 0, .coordinate)
            timer(after: 0, .follow)
            timer(after: 500, .replicatorPersistedTick)
            timer(after: SimNode.movingCopyCheckMs, .movingCopyCheck)
            return
        }
        // Taking a lost lease again (`leaseLost`): retried while the old one may still live.
        guard let deadline = reacquireDeadline else { return }
        if taken {
            leaseWatch.renewed()
            world.log("\(id) took its lease again as \(lease.incarnation)")
        } else if case .bool(false) = result, now < deadline {
            return timer(after: settings.heartbeatMs / 2, .acquireRetry)
        } else {
            world.log("\(id) cannot take its lease again")
        }
        reacquireDeadline = nil
        timer(after: settings.heartbeatMs, .heartbeat)
    }

    func heartbeat() {
        guard reacquireDeadline == nil else { return }
        call(database: .renew(lease), continuation: .renew(heartbeat: true))
    }

    func renewed(_ result: SimResult, heartbeat: Bool) {
        if case .bool(true) = result { leaseWatch.renewed() }
        guard heartbeat else {
            // `waitUntilServing`, after its renewal: the table every 50 ms until serving.
            awaitingServing = true
            return requestRefresh()
        }
        if case .bool(false) = result {
            leaseLost()
            return
        }
        timer(after: settings.heartbeatMs, .heartbeat)
    }

    /// The lease expired before it was renewed: join again under a new incarnation, set
    /// first (tables computed for the previous run are not applied from here on, and flushes
    /// claim the new run), then give up every partition and take the lease again (memory,
    /// copies and queues stay: the process lives on).
    func leaseLost() {
        world.log("\(id) lost its lease (\(lease.incarnation))")
        incarnationCounter += 1
        lease.incarnation = "\(id)-g\(generation)-\(incarnationCounter)"
        claimedIncarnation.set(lease.incarnation)
        reacquireDeadline = .max
        enqueueOwnership(.relinquishAll)
    }

    /// After `relinquishAll`: the acquire loop of `leaseLost`.
    func reacquireAfterRelinquish() {
        reacquireDeadline = now + settings.leaseMs + 2 * settings.heartbeatMs
        acquire()
    }

    // MARK: Coordinator

    func coordinate() {
        if let session = coordinatorSession {
            call(database: .coordinatorRead(session: session), continuation: .coordinatorRead(session: session))
        } else {
            let session = world.newSession()
            call(database: .tryLock(session: session), continuation: .tryLock(session: session))
        }
    }

    func coordinatorAnswered(_ continuation: Continuation, _ result: SimResult) {
        switch (continuation, result) {
        case (.tryLock(let session), .bool(true)):
            coordinatorSession = session
            plannerMemo = nil
            world.log("\(id) coordinates (session \(session))")
            coordinate()
        case (.tryLock, _):
            timer(after: settings.heartbeatMs, .coordinate)
        case (.coordinatorRead(let session), .coordinatorView(let leases, let published, let synced)):
            let view = world.plannerView(leases)
            // All the planner reads of `synced`: whether each moving partition's target holds
            // a complete copy under the current epoch.
            let syncedTargets = published?.assignments.indices.filter { partition in
                guard let assignment = published?.assignments[partition], let target = assignment.migrationTarget else { return false }
                return synced[partition]?[target] == assignment.epoch
            } ?? []
            let inputs = PlannerInputs(
                version: published?.version,
                leases: view.leases.map {
                    "\($0.lease.node)|\($0.lease.incarnation)|\($0.isLive)|\($0.lease.status)|\($0.lease.hasClientEndpoints)|\($0.lease.protocolVersion)"
                },
                syncedTargets: syncedTargets)
            if inputs == plannerMemo { return timer(after: settings.coordinatorTickMs, .coordinate) }
            world.plannerRuns += 1
            let next = MigrationPlanner.next(
                after: published, view: view, backupCount: settings.backupCount, protocolVersion: ClusterSettings.protocolVersion,
                maxConcurrentMigrations: settings.maxConcurrentMigrations,
                synced: { partition, epoch in Set((synced[partition] ?? [:]).filter { $0.value == epoch }.keys) })
            guard let next else {
                plannerMemo = inputs
                return timer(after: settings.coordinatorTickMs, .coordinate)
            }
            plannerMemo = nil
            call(database: .publish(session: session, table: next, expected: published?.version), continuation: .publish(session: session))
        case (.publish, .ok):
            timer(after: settings.coordinatorTickMs, .coordinate)
        case (.coordinatorRead(let session), _), (.publish(let session), _):
            // The lock's connection failed, or the table changed under it: the session ends
            // (closing its connection frees the lock) and the node tries again later.
            world.endSession(node: index, generation: generation, session: session)
            coordinatorSession = nil
            timer(after: settings.heartbeatMs, .coordinate)
        default:
            break
        }
    }

    // MARK: Following the table

    /// `refreshTable`, one at a time (the follow loop awaits it); a request meanwhile runs after.
    func requestRefresh() {
        guard joined else { return }
        if refreshInFlight {
            refreshPending = true
            return
        }
        refreshInFlight = true
        call(database: .readTable, continuation: .readTable)
    }

    func tableRead(_ result: SimResult) {
        guard case .table(let published?) = result else { return refreshDone() }
        // Computed for a previous run of this node (a restart, or a lease lost and taken
        // again): nothing in it is this run's (`refreshTable`).
        if settings.recordRuns, published.namesAnotherRun(of: id, than: claimedIncarnation.get()) {
            world.log("\(id) ignores table v\(published.version): it names its run \(published.incarnation(of: id) ?? "?")")
            return refreshDone()
        }
        if appliedVersion == nil || published.version > appliedVersion! {
            enqueueOwnership(.apply(published, completesRefresh: true))
        } else if ownershipRun != nil || table.partitions(ownedBy: id).contains(where: { held[$0] != table.assignment(of: $0).epoch }) {
            enqueueOwnership(.retryUnheld(completesRefresh: true))
        } else {
            // `retryUnheld` with nothing unheld does nothing (skipped: it is the common case).
            refreshDone()
        }
    }

    func refreshDone() {
        refreshInFlight = false
        if refreshPending {
            refreshPending = false
            requestRefresh()
        } else if awaitingServing, !servingCheckScheduled {
            if isServing {
                awaitingServing = false
                world.log("\(id) serves (table v\(appliedVersion ?? 0))")
            } else {
                servingCheckScheduled = true
                timer(after: 50, .servingCheck)
            }
        }
    }
}
