import Logging
import Tenancy
import TopGunCore
import TopGunWire

/// The path of a write (design.md §3 steps 3–6), shared by WebSocket and HTTP sync: checks,
/// merge on the map's store, journal, write-behind, and the ack the write concern calls for.
public struct WritePath: Sendable {
    let maps: MapDirectory
    let mapKinds: MapKindRecorder
    let policies: TenantPolicies
    let durability: any DurabilityPipeline
    let journal: EventJournal
    let partitionTable: CurrentPartitionTable
    let peers: (any PartitionPeers)?
    /// The node's wall clock.
    let clock: NodeClock
    let maxClockDrift: Duration
    let usage: UsageMeter
    let metrics: DataPlaneMetrics
    /// The map's schema on every written value.
    let schemas: SchemaGate
    /// In a cluster: where a session's writes are noted, so that they do not come back to it
    /// as `SERVER_EVENT`s through its live queries' feeds.
    var ownWrites: OwnWrites?

    /// Longest accepted key and map name, in UTF-8 bytes.
    public static let maxKeyBytes = 1024
    public static let maxMapNameBytes = 256

    public struct Outcome: Sendable {
        public var outcomes: [OpOutcome]
        /// The durability ticket to wait for before acknowledging (PERSISTED only).
        public var ticket: FlushTicket?
        /// The level the ack reports.
        public var level: WriteConcern
        public var ack: OpAck
        public var rejections: [OpRejected]
        /// Set when a quota refused the whole batch before anything was applied: nothing is
        /// acknowledged (the client sends the ops again later) and this error is the answer.
        public var refusal: ErrorMessage?

        static func refused(_ error: ErrorMessage) -> Outcome {
            Outcome(outcomes: [], ticket: nil, level: .fireAndForget, ack: OpAck(lastId: "unknown", achievedLevel: .fireAndForget), rejections: [], refusal: error)
        }
    }

    public init(
        maps: MapDirectory, mapKinds: MapKindRecorder, policies: TenantPolicies, durability: any DurabilityPipeline, journal: EventJournal,
        partitionTable: CurrentPartitionTable, peers: (any PartitionPeers)?, clock: NodeClock, maxClockDrift: Duration, usage: UsageMeter,
        metrics: DataPlaneMetrics, logger: Logger
    ) {
        self.maps = maps
        self.mapKinds = mapKinds
        self.policies = policies
        self.durability = durability
        self.journal = journal
        self.partitionTable = partitionTable
        self.peers = peers
        self.clock = clock
        self.maxClockDrift = maxClockDrift
        self.usage = usage
        self.metrics = metrics
        self.logger = logger
        self.schemas = SchemaGate(metrics: metrics, logger: logger)
    }

    private let logger: Logger

    /// Applies a batch. `forwarded`: the batch comes from the node its client is connected to,
    /// which admitted and charged it already (quotas, usage); an op of it for a partition this
    /// node no longer owns is not forwarded again (no request travels in a loop): the whole
    /// batch is refused, and the client sends it again.
    public func apply(_ ops: [ClientOp], batchConcern: WriteConcern?, context: RequestContext, writer: SessionID?, forwarded: Bool = false) async -> Outcome {
        // Read once per batch: every quota below checks against these.
        let limits = await policies.quotas(context.tenant)
        if !forwarded, let refusal = admit(ops, tenant: context.tenant, operationsPerSecond: limits.maxOperationsPerSecond, session: writer) {
            return .refused(refusal)
        }
        let nowMillis = clock.nowMillis()
        // Timestamps further ahead than this are refused for good (the clock-drift rule).
        let latestMillis = Self.latestAcceptedMillis(nowMillis: nowMillis, maxDrift: maxClockDrift)
        var outcomes = [OpOutcome](repeating: .applied, count: ops.count)
        // The one routing decision per op: served here, or by the partition's owner.
        let router = partitionTable.router
        let unloaded = maps.unloaded
        // A node that owns every partition, all in memory (always, on a node on its own),
        // looks up no op's partition.
        let checksPartitions = !router.ownsEverything || !unloaded.isEmpty
        var remote: [NodeID: [Int]] = [:]
        var notLoaded: Int?
        // Group by map, keeping each map's ops in batch order.
        var groups: [(map: String, indices: [Int])] = []
        // Map names compare byte for byte (`HashedKey`): "café" and "cafe\u{301}" are two maps.
        var groupIndex: [HashedKey: Int] = [:]
        // Through the buffer: iterating the array would copy (retain and release) every op.
        ops.withUnsafeBufferPointer { ops in
            var validNodeId: String?
            for index in ops.indices {
                if let problem = Self.validate(ops.baseAddress! + index, validNodeId: &validNodeId, latestMillis: latestMillis) {
                    outcomes[index] = problem
                    continue
                }
                if checksPartitions {
                    let partition = PartitionFunction.partition(forKey: ops[index].key, tenantID: context.tenant.rawValue)
                    if case .remote(let owner) = router.route(partition: partition) {
                        remote[owner, default: []].append(index)
                        continue
                    }
                    if unloaded.contains(partition) { notLoaded = partition }
                }
                let mapName = HashedKey(ops[index].mapName)
                if let position = groupIndex[mapName] {
                    groups[position].indices.append(index)
                } else {
                    groupIndex[mapName] = groups.count
                    groups.append((mapName.string, [index]))
                }
            }
        }
        if let notLoaded {
            // Nothing applied: the client sends the batch again once the partition is loaded.
            return refusedWhole(ops, .partitionNotLoaded(notLoaded), session: writer)
        }
        if let ownWrites, let writer, !forwarded {
            // Before any owner applies them: their events may come back at once.
            ownWrites.note(outcomes.allSatisfy(\.success) ? ops : ops.indices.filter { outcomes[$0].success }.map { ops[$0] }, by: writer)
        }
        if !remote.isEmpty {
            if forwarded { return .refused(.partitionMoved(to: remote.keys.sorted().first!)) }
            // Before anything is applied here: an owner that cannot answer leaves the whole
            // batch unapplied and unacknowledged, and the client sends it again.
            guard let peers = peers else { return refusedWhole(ops, .partitionOwnerUnreachable(remote.keys.sorted().first!), session: writer) }
            // Every owner at once: the batch waits for the slowest, not for their sum.
            let answers = await withTaskGroup(of: (NodeID, [Int], Result<[OpOutcome], any Error>).self) { group in
                for (owner, indices) in remote {
                    let forwardedOps = indices.map { ops[$0] }
                    group.addTask {
                        do {
                            let answered = try await peers.applyWrites(forwardedOps, batchConcern: batchConcern, on: owner, context: context)
                            guard answered.count == indices.count else {
                                throw ClusterMessageError("\(answered.count) outcomes for \(indices.count) ops")
                            }
                            return (owner, indices, .success(answered))
                        } catch {
                            return (owner, indices, .failure(error))
                        }
                    }
                }
                var answers: [(NodeID, [Int], Result<[OpOutcome], any Error>)] = []
                for await answer in group { answers.append(answer) }
                return answers.sorted { $0.0 < $1.0 }
            }
            for (owner, indices, answered) in answers {
                switch answered {
                case .success(let answered):
                    for (offset, index) in indices.enumerated() { outcomes[index] = answered[offset] }
                case .failure(let error):
                    logger.warning("writes forwarded to their partition's owner were not taken; the client is asked to send them again", metadata: [
                        "owner": "\(owner)", "ops": "\(indices.count)", "error": "\(error)",
                        "tenant": "\(context.tenant)", "requestId": "\(context.requestId)",
                    ])
                    return refusedWhole(ops, .forwardFailed(to: owner, error), session: writer)
                }
            }
        }
        var records: [StoredRecord] = []
        // Past `max_maps`, ops creating a new map are refused for good (their map cannot
        // exist until the quota is raised); ops on existing maps go through.
        let maxMaps = limits.maxMaps
        if maxMaps < TenantPolicies.unlimited.maxMaps {
            var known = Set(maps.stores(of: context.tenant).map { HashedKey($0.name) })
            // In a cluster, maps written through other nodes count too (read only when a
            // write would make a map this node does not hold yet).
            if peers != nil, groups.contains(where: { maps.existingStore(tenant: context.tenant, name: $0.map) == nil }),
                let recorded = await mapKinds.recordedMaps(tenant: context.tenant)
            {
                known.formUnion(recorded)
            }
            groups = groups.filter { group in
                guard !known.contains(HashedKey(group.map)) else { return true }
                guard let refusal = QuotaGate.newMap(group.map, existing: known.count, limit: maxMaps) else {
                    known.insert(HashedKey(group.map))
                    return true
                }
                for index in group.indices { outcomes[index] = refusal.opOutcome }
                return false
            }
        }
        let storedBytes = limits.maxStorageBytes < TenantPolicies.unlimited.maxStorageBytes ? policies.storedBytes(context.tenant) : 0
        if QuotaGate.write(isDelete: false, storedBytes: storedBytes, limit: limits.maxStorageBytes) != nil {
            // Past `max_storage_bytes` writes are refused for good and deletes still go
            // through, so the tenant can make room; refused for good (not left unacknowledged)
            // because a later ack would otherwise cover them anyway.
            for group in groups {
                for index in group.indices {
                    if let refusal = QuotaGate.write(isDelete: Self.isDelete(ops[index]), storedBytes: storedBytes, limit: limits.maxStorageBytes) {
                        outcomes[index] = refusal.opOutcome
                    }
                }
            }
            groups = groups.compactMap { group in
                let kept = group.indices.filter { outcomes[$0].success }
                return kept.isEmpty ? nil : (group.map, kept)
            }
        }
        // Whether changed rows go anywhere: with records in memory only there is nothing to
        // persist, and nothing for a PERSISTED ack to wait for.
        let persists = durability.needsRecords
        for var group in groups {
            if let policy = await policies.schema(context.tenant, map: group.map) {
                group.indices = checkSchema(policy, ops: ops, indices: group.indices, map: group.map, tenant: context.tenant, outcomes: &outcomes)
                if group.indices.isEmpty { continue }
            }
            let store = maps.store(tenant: context.tenant, name: group.map)
            if store.recordedKind == nil, let proposed = group.indices.lazy.compactMap({ MapStore.kind(of: ops[$0]) }).first {
                await mapKinds.settle(store, proposing: proposed)
            }
            // Usually one map takes the whole batch: hand it over without copying the ops.
            let groupOps = group.indices.count == ops.count ? ops : group.indices.map { ops[$0] }
            let result = await store.apply(groupOps, writer: writer, nowMillis: nowMillis, collectingRecords: persists)
            for (offset, index) in group.indices.enumerated() { outcomes[index] = result.outcomes[offset] }
            // The first (usually only) map's rows are taken as they are: appending them to an
            // empty array would copy, retaining every element again.
            if records.isEmpty { records = result.changedRecords } else { records += result.changedRecords }
            journal.append(result.journal, mapName: group.map, tenant: context.tenant)
        }
        let level = ops.indices.map { ops[$0].writeConcern ?? batchConcern ?? .persisted }.max() ?? (batchConcern ?? .persisted)
        var ticket: FlushTicket?
        if persists, !records.isEmpty || ((level == .persisted || (level == .replicated && durability.replicates)) && !groups.isEmpty) {
            let queued = await durability.enqueue(records, touching: Self.partitionsWithoutRecords(
                ops, applied: groups.lazy.flatMap(\.indices).filter { outcomes[$0].success }, records: records, tenant: context.tenant))
            if level == .persisted { ticket = queued }
            // REPLICATED waits for the partitions' backups where there are any (a cluster).
            if level == .replicated, durability.replicates { ticket = queued.awaitingReplication }
        }
        metrics.opsApplied.increment(by: ops.count)
        if !forwarded { usage.operations(context.tenant, count: ops.count) }
        let achieved: WriteConcern = level == .replicated && !durability.replicates ? .applied : level
        var results: [OpResult] = []
        var rejections: [OpRejected] = []
        results.reserveCapacity(ops.count)
        for index in ops.indices {
            let opId = ops[index].id ?? String(index)
            let outcome = outcomes[index]
            if outcome.success {
                results.append(OpResult(opId: opId, success: true, achievedLevel: min(ops[index].writeConcern ?? achieved, achieved)))
            } else {
                results.append(OpResult(opId: opId, success: false, achievedLevel: .fireAndForget, error: outcome.error))
                rejections.append(OpRejected(
                    opId: opId, reason: outcome.error ?? "rejected", code: outcome.code?.rawValue,
                    details: outcome.field.map { ["field": .string($0)] }))
                metrics.error(code: outcome.code?.rawValue ?? 400)
            }
        }
        let ack = OpAck(lastId: ops.last?.id ?? "unknown", achievedLevel: achieved, results: results)
        return Outcome(outcomes: outcomes, ticket: ticket, level: level, ack: ack, rejections: rejections)
    }

    /// The partitions a PERSISTED ack must also wait for beyond those of `records`: an op
    /// that changed nothing (an idempotent re-send) waits for its partition's rows of the
    /// first send. Looked up only when some applied op left no record of its own.
    static func partitionsWithoutRecords(
        _ ops: [ClientOp], applied: some Collection<Int>, records: [StoredRecord], tenant: TenantID
    ) -> PartitionSet {
        var partitions = PartitionSet()
        guard records.count < applied.count else { return partitions }
        for index in applied {
            partitions.insert(PartitionFunction.partition(forKey: ops[index].key, tenantID: tenant.rawValue))
        }
        return partitions
    }

    /// The quota that refuses a whole batch for now (design.md §7): operations per second.
    /// Nil admits the batch. (Maps and storage refuse single ops for good, in `apply`.)
    /// A batch refused whole before it was acknowledged: the connection's later batches are
    /// refused too until the client sends this one again (an ack of a later batch would
    /// cover it, in the client's reading).
    func refusedWhole(_ ops: [ClientOp], _ error: ErrorMessage, session: SessionID?) -> Outcome {
        if let session, !ops.isEmpty { policies.refused(ops[0].id ?? "0", session: session) }
        return .refused(error)
    }

    func admit(_ ops: [ClientOp], tenant: TenantID, operationsPerSecond: Int64, session: SessionID?) -> ErrorMessage? {
        guard !ops.isEmpty else { return nil }
        let opIDs = ops.indices.map { ops[$0].id ?? String($0) }
        if let session {
            let verdict = policies.mayConsider(opIDs, session: session)
            if !verdict.allowed, verdict.byQuota {
                metrics.error(code: WireErrorCode.rateLimited.rawValue)
                return .make(.rateLimited, "an earlier batch of this connection was refused by a quota; send its ops again first", details: [
                    "quota": "max_operations_per_second", "retryAfterMs": .int(100),
                ])
            }
            if !verdict.allowed {
                metrics.error(code: WireErrorCode.unavailable.rawValue)
                return .make(.unavailable, "an earlier batch of this connection was not acknowledged; send its ops again first", details: [
                    "retryAfterMs": .int(100),
                ])
            }
        }
        guard let refusal = policies.chargeOperations(tenant, count: ops.count, limit: operationsPerSecond, nowNanos: monotonicNanos()) else {
            return nil
        }
        if let session, let first = opIDs.first { policies.refused(first, session: session, byQuota: true) }
        metrics.error(code: refusal.code.rawValue)
        return refusal.errorMessage
    }

    /// Applies the map's schema to the values of `indices` (`SchemaGate`): a rejected op is
    /// refused for good. Returns the ops that go on to the map.
    func checkSchema(
        _ policy: TenantPolicies.SchemaPolicy, ops: [ClientOp], indices: [Int], map: String, tenant: TenantID, outcomes: inout [OpOutcome]
    ) -> [Int] {
        indices.filter { index in
            guard let value = ops[index].record?.value ?? ops[index].orRecord?.value,
                let rejection = schemas.check(value, policy: policy, map: map, tenant: tenant)
            else { return true }
            outcomes[index] = rejection.opOutcome
            return false
        }
    }

    /// Whether an op only removes (a tombstone or an OR-Map tag removal).
    static func isDelete(_ op: ClientOp) -> Bool {
        if op.orRecord != nil { return false }
        if let record = op.record { return record.isTombstone }
        return true
    }

    /// The newest timestamp millis accepted now: the node's clock plus the allowed drift.
    static func latestAcceptedMillis(nowMillis: Int64, maxDrift: Duration) -> Int64 {
        let driftMillis = Int64((maxDrift / .milliseconds(1)).rounded(.down))
        let (sum, overflow) = nowMillis.addingReportingOverflow(driftMillis)
        return overflow ? .max : sum
    }

    /// The rejection of a timestamp too far ahead of the node's clock.
    static func aheadOfClock(_ millis: Int64, latestMillis: Int64) -> OpOutcome {
        .rejected(
            .badRequest, "timestamp \(millis) is further ahead of the server's clock than the allowed drift (latest accepted \(latestMillis))",
            field: "timestamp")
    }

    /// Permanent problems with an op itself, before any map sees it.
    /// Read in place (a pointer into the batch), so that checking an op does not copy it.
    /// `validNodeId` is the last node id found valid: a batch's ops share one (one string,
    /// so comparing is comparing two pointers), which is then scanned once, not per op.
    /// `latestMillis`: the newest timestamp accepted (an OR_REMOVE's tag is a timestamp too).
    static func validate(_ op: UnsafePointer<ClientOp>, validNodeId: inout String?, latestMillis: Int64 = .max) -> OpOutcome? {
        // An op the decoder could not read (a string in it is not UTF-8): refused for good, so
        // the client stops sending it, while the rest of its batch goes on.
        if let problem = op.pointee.decodingProblem { return .rejected(.badRequest, "invalid op: \(problem)") }
        if op.pointee.mapName.isEmpty { return .rejected(.badRequest, "mapName must not be empty") }
        if op.pointee.mapName.utf8.count > maxMapNameBytes { return .rejected(.tooLarge, "mapName longer than \(maxMapNameBytes) bytes") }
        if op.pointee.key.utf8.count > maxKeyBytes { return .rejected(.tooLarge, "key longer than \(maxKeyBytes) bytes") }
        if let ts = op.pointee.record?.timestamp ?? op.pointee.orRecord?.timestamp {
            guard ts.millis >= 0, ts.counter >= 0 else { return .rejected(.badRequest, "invalid timestamp \(ts)", field: "timestamp") }
            if ts.nodeId != validNodeId {
                guard !ts.nodeId.utf8.contains(UInt8(ascii: ":")) else { return .rejected(.badRequest, "invalid timestamp \(ts)", field: "timestamp") }
                validNodeId = ts.nodeId
            }
            if ts.millis > latestMillis { return aheadOfClock(ts.millis, latestMillis: latestMillis) }
        } else if let tag = op.pointee.orTag, let tagged = Timestamp(tag), tagged.millis > latestMillis {
            return aheadOfClock(tagged.millis, latestMillis: latestMillis)
        }
        if let ttl = op.pointee.record?.ttlMs ?? op.pointee.orRecord?.ttlMs, !(ttl > 0 && ttl.isFinite) {
            return .rejected(.badRequest, "ttlMs must be a positive number")
        }
        return nil
    }
}
