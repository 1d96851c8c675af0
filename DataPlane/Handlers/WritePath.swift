import Tenancy
import TopGunCore
import TopGunWire

/// The path of a write (design.md §3 steps 3–6), shared by WebSocket and HTTP sync: checks,
/// merge on the map's store, journal, write-behind, and the ack the write concern calls for.
public struct WritePath: Sendable {
    let services: DataPlaneServices

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
    }

    public init(services: DataPlaneServices) {
        self.services = services
    }

    public func apply(_ ops: [ClientOp], batchConcern: WriteConcern?, context: RequestContext, writer: SessionID?) async -> Outcome {
        let nowMillis = services.clock.nowMillis()
        var outcomes = [OpOutcome](repeating: .applied, count: ops.count)
        // Group by map, keeping each map's ops in batch order.
        var groups: [(map: String, indices: [Int])] = []
        var groupIndex: [String: Int] = [:]
        for (index, op) in ops.enumerated() {
            if let problem = Self.validate(op) {
                outcomes[index] = problem
                continue
            }
            if let position = groupIndex[op.mapName] {
                groups[position].indices.append(index)
            } else {
                groupIndex[op.mapName] = groups.count
                groups.append((op.mapName, [index]))
            }
        }
        var records: [StoredRecord] = []
        var journal: [JournalDraft] = []
        for group in groups {
            let store = services.maps.store(tenant: context.tenant, name: group.map)
            let result = await store.apply(group.indices.map { ops[$0] }, writer: writer, nowMillis: nowMillis)
            for (offset, index) in group.indices.enumerated() { outcomes[index] = result.outcomes[offset] }
            records += result.changedRecords
            journal += result.journal
        }
        await services.journal.append(journal, tenant: context.tenant)
        let level = ops.map { $0.writeConcern ?? batchConcern ?? .persisted }.max() ?? (batchConcern ?? .persisted)
        var ticket: FlushTicket?
        if !records.isEmpty || level == .persisted {
            let queued = await services.durability.enqueue(records)
            if level == .persisted { ticket = queued }
        }
        services.metrics.opsApplied.increment(by: ops.count)
        let achieved: WriteConcern = level == .replicated ? .applied : level
        var results: [OpResult] = []
        var rejections: [OpRejected] = []
        results.reserveCapacity(ops.count)
        for (index, op) in ops.enumerated() {
            let opId = op.id ?? String(index)
            let outcome = outcomes[index]
            if outcome.success {
                results.append(OpResult(opId: opId, success: true, achievedLevel: min(op.writeConcern ?? achieved, achieved)))
            } else {
                results.append(OpResult(opId: opId, success: false, achievedLevel: .fireAndForget, error: outcome.error))
                rejections.append(OpRejected(opId: opId, reason: outcome.error ?? "rejected", code: outcome.code?.rawValue))
                services.metrics.error(code: outcome.code?.rawValue ?? 400)
            }
        }
        let ack = OpAck(lastId: ops.last?.id ?? "unknown", achievedLevel: achieved, results: results)
        return Outcome(outcomes: outcomes, ticket: ticket, level: level, ack: ack, rejections: rejections)
    }

    /// Permanent problems with an op itself, before any map sees it.
    static func validate(_ op: ClientOp) -> OpOutcome? {
        if op.mapName.isEmpty { return .rejected(.badRequest, "mapName must not be empty") }
        if op.mapName.utf8.count > maxMapNameBytes { return .rejected(.tooLarge, "mapName longer than \(maxMapNameBytes) bytes") }
        if op.key.utf8.count > maxKeyBytes { return .rejected(.tooLarge, "key longer than \(maxKeyBytes) bytes") }
        if let ts = op.record?.timestamp ?? op.orRecord?.timestamp, ts.nodeId.contains(":") || ts.millis < 0 || ts.counter < 0 {
            return .rejected(.badRequest, "invalid timestamp \(ts)")
        }
        if let ttl = op.record?.ttlMs ?? op.orRecord?.ttlMs, !(ttl > 0 && ttl.isFinite) {
            return .rejected(.badRequest, "ttlMs must be a positive number")
        }
        return nil
    }
}
