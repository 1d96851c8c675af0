import Tenancy
import TopGunCore
import TopGunWire

/// `PartitionPeers` over the cluster port: requests for partitions owned elsewhere go to their
/// owner as `ClusterMessageType` requests, and come back once the owner met their write
/// concern.
public struct ClusterPeers: PartitionPeers {
    let transport: ClusterTransport
    /// How long an owner may take: the time a PERSISTED write may wait there, and a margin.
    let timeout: Duration

    let metrics: ClusterMetrics?

    public init(transport: ClusterTransport, timeout: Duration, metrics: ClusterMetrics? = nil) {
        self.transport = transport
        self.timeout = timeout
        self.metrics = metrics
    }

    public func applyWrites(_ ops: [ClientOp], batchConcern: WriteConcern?, on node: NodeID, context: RequestContext) async throws -> [OpOutcome] {
        let body = ForwardedWrites(context: context, batchConcern: batchConcern, ops: ops).encoded()
        let answer = try await transport.request(ClusterMessageType.writes, body, to: node, timeout: timeout)
        metrics?.forwardedOps.increment(by: ops.count)
        return try ForwardedOutcomes(decoding: answer).outcomes
    }

    public func pushORMapEntries(_ entries: [ORMapEntry], mapName: String, on node: NodeID, context: RequestContext) async throws -> OpOutcome {
        let body = ForwardedORMapPush(context: context, mapName: mapName, entries: entries).encoded()
        let answer = try await transport.request(ClusterMessageType.orMapPush, body, to: node, timeout: timeout)
        return try ClusterCodec.outcome(from: .object(try ClusterCodec.decode(answer)))
    }

    /// Hands rows to `node`, which merges them as writes and answers once they are durable.
    func mergeRecords(_ records: [StoredRecord], on node: NodeID) async throws {
        _ = try await transport.request(ClusterMessageType.mergeRecords, RecordBatch(records).encoded(), to: node, timeout: timeout)
    }

    /// Sends each row to its partition's owner in `table`, a request per owner; rows of
    /// partitions this node owns again (it gave them up and got them back) merge here.
    func handOver(_ records: [StoredRecord], table: PartitionTable, localNode: NodeID, mergeHere: ([StoredRecord]) async throws -> Void) async throws {
        var byOwner: [NodeID: [StoredRecord]] = [:]
        for record in records { byOwner[table.owner(of: record.partition), default: []].append(record) }
        for (owner, rows) in byOwner.sorted(by: { $0.key < $1.key }) {
            if owner == localNode {
                try await mergeHere(rows)
            } else {
                try await mergeRecords(rows, on: owner)
            }
        }
    }
}

/// The receiving side of the cluster port: serves what `ClusterPeers` sends.
struct ClusterInbox: Sendable {
    let writes: WritePath
    let maps: MapDirectory
    let mapKinds: MapKindRecorder
    let counters: CounterRegistry
    let journal: EventJournal
    let durability: any DurabilityPipeline
    let partitionTable: CurrentPartitionTable
    let clock: NodeClock
    let persistTimeout: Duration
    /// The copies this node keeps as a backup.
    let replicas: ReplicaHolder?

    func handle(from peer: NodeID, type: String, body: [UInt8], coordination: ClusterCoordination) async throws -> [UInt8] {
        switch type {
        case ClusterMessageType.ping:
            return []
        case ClusterMessageType.stream:
            try await coordination.inbox.receive(from: peer, body: body)
            return []
        case ClusterCoordination.MessageType.counterRequest, ClusterCoordination.MessageType.counterSync,
            ClusterCoordination.MessageType.lockRequest, ClusterCoordination.MessageType.lockRelease, ClusterCoordination.MessageType.lockCopy,
            ClusterCoordination.MessageType.sessionsAlive, ClusterCoordination.MessageType.queryRegister,
            ClusterCoordination.MessageType.journalSubscribe, ClusterCoordination.MessageType.journalRead:
            return try await coordination.serve(type, body: body, from: peer)
        case ClusterMessageType.writes:
            let request = try ForwardedWrites(decoding: body)
            let outcome = await writes.apply(request.ops, batchConcern: request.batchConcern, context: request.context, writer: nil, forwarded: true)
            if let refusal = outcome.refusal { throw ClusterMessageError(refusal.message) }
            if let ticket = outcome.ticket, !(await durability.waitUntilDurable(ticket, timeout: persistTimeout)) {
                throw ClusterMessageError("the writes were applied but not persisted in time")
            }
            return ForwardedOutcomes(outcome.outcomes).encoded()
        case ClusterMessageType.orMapPush:
            let request = try ForwardedORMapPush(decoding: body)
            return ClusterCodec.encode(try DataObject(wire: ClusterCodec.outcome(await pushORMap(request))))
        case ClusterMessageType.replicate:
            guard let replicas else { throw ClusterMessageError("this node keeps no copies") }
            try await replicas.receive(try ReplicaBatch(decoding: body), from: peer)
            return ClusterCodec.encode([:])
        case ClusterMessageType.mapTree, ClusterMessageType.mapLeaf, ClusterMessageType.mapEntries, ClusterMessageType.mapDelta,
            ClusterMessageType.mapQuery:
            return try await ClusterMapReads.serve(type, body: body, maps: maps, table: partitionTable)
        case ClusterMessageType.mergeRecords:
            let batch = try RecordBatch(decoding: body)
            try await merge(batch.records)
            return ClusterCodec.encode([:])
        default:
            throw ClusterMessageError("unknown cluster request '\(type)'")
        }
    }

    private func ownsAll(_ partitions: some Sequence<Int>) throws {
        let router = partitionTable.router
        for partition in partitions {
            if case .remote(let owner) = router.route(partition: partition) {
                throw ClusterMessageError(ErrorMessage.partitionMoved(to: owner).message)
            }
            if maps.unloaded.contains(partition) { throw ClusterMessageError(ErrorMessage.partitionNotLoaded(partition).message) }
        }
    }

    private func pushORMap(_ request: ForwardedORMapPush) async throws -> OpOutcome {
        try ownsAll(request.entries.map { PartitionFunction.partition(forKey: $0.key, tenantID: request.context.tenant.rawValue) })
        guard !request.entries.isEmpty else { return .applied }
        let store = maps.store(tenant: request.context.tenant, name: request.mapName)
        await mapKinds.settle(store, proposing: .orMap)
        let result = await store.pushDiff(request.entries, writer: nil, nowMillis: clock.nowMillis())
        if let rejected = result.outcomes.first(where: { !$0.success }) { return rejected }
        journal.append(result.journal, mapName: request.mapName, tenant: request.context.tenant)
        if !result.changedRecords.isEmpty { _ = await durability.enqueue(result.changedRecords) }
        return .applied
    }

    /// Merges rows as writes (events to live queries and watchers, then write-behind), and
    /// returns once they are durable here.
    func merge(_ records: [StoredRecord]) async throws {
        try ownsAll(Set(records.map(\.partition)))
        var changed: [StoredRecord] = []
        var lww: [MapDirectory.MapID: [ClientOp]] = [:]
        var orMap: [MapDirectory.MapID: [ORMapEntry]] = [:]
        var counterRows: [StoredRecord] = []
        for record in records {
            let id = MapDirectory.MapID(tenant: record.key.tenant, name: record.key.mapName)
            switch record.value {
            case .lww(let value):
                lww[id, default: []].append(ClientOp(mapName: id.name, key: record.key.key, opType: value.value == nil ? "REMOVE" : "PUT", record: value))
            case .orMap(let entry):
                orMap[id, default: []].append(entry)
            case .counter:
                counterRows.append(record)
            }
        }
        let now = clock.nowMillis()
        for (id, ops) in lww {
            let store = maps.store(tenant: id.tenant, name: id.name)
            await mapKinds.settle(store, proposing: .lww)
            let result = await store.apply(ops, writer: nil, nowMillis: now, collectingRecords: durability.needsRecords)
            journal.append(result.journal, mapName: id.name, tenant: id.tenant)
            changed += result.changedRecords
        }
        for (id, entries) in orMap {
            let store = maps.store(tenant: id.tenant, name: id.name)
            await mapKinds.settle(store, proposing: .orMap)
            let result = await store.pushDiff(entries, writer: nil, nowMillis: now)
            journal.append(result.journal, mapName: id.name, tenant: id.tenant)
            changed += result.changedRecords
        }
        if !counterRows.isEmpty { changed += await counters.merge(counterRows) }
        guard durability.needsRecords else { return }
        let ticket = await durability.enqueue(changed, touching: PartitionSet(records.map(\.partition)))
        guard await durability.waitUntilDurable(ticket, timeout: persistTimeout) else {
            throw ClusterMessageError("the merged records were not persisted in time")
        }
    }
}
