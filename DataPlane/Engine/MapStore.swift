import Synchronization
import NIOCore
import Tenancy
import TopGunCore
import TopGunWire

/// What one op came to.
public struct OpOutcome: Sendable, Equatable {
    public var success: Bool
    /// Set when the op is rejected for good (it is still acknowledged).
    public var code: WireErrorCode?
    public var error: String?
    /// The op's field at fault, when one is (`OP_REJECTED.details.field`).
    public var field: String?

    public static let applied = OpOutcome(success: true, code: nil, error: nil)

    public static func rejected(_ code: WireErrorCode, _ error: String, field: String? = nil) -> OpOutcome {
        OpOutcome(success: false, code: code, error: error, field: field)
    }
}

/// The result of applying a batch of ops to one map.
public struct MapApplyResult: Sendable {
    public var outcomes: [OpOutcome] = []
    /// New states to persist (one per changed key).
    public var changedRecords: [StoredRecord] = []
    /// Changes for the event journal.
    public var journal = JournalDrafts()
}

/// A journal event before the journal gives it a sequence number. The map is named once per
/// batch, by whoever appends the drafts; the timestamp's node id once per batch too
/// (`JournalDrafts`), unless this event's differs.
public struct JournalDraft: Sendable {
    public var type: JournalEventType
    /// The key, kept in place when it is short (no string object to free when the journal
    /// drops the event, long after its write, when that object is no longer in cache).
    var storedKey: InlineText
    public var key: String { storedKey.string }
    /// As the records held them: a packed value stays packed (decoded only when read).
    public var value: RecordValue?
    public var previousValue: RecordValue?
    public var millis: Int64
    public var counter: Int64
    /// The timestamp's node id when it is not the batch's (`JournalDrafts.nodeId`).
    public var otherNodeId: String?
}

/// One batch's journal events, in order. Their timestamps nearly always share one node id
/// (one client's writes), kept here once: that string is shared by every record the client
/// wrote, and each event holding it would retain it now and release it when the journal
/// drops the event, from whichever event loop that happens on, contending for its count.
public struct JournalDrafts: Sendable, RandomAccessCollection {
    public private(set) var drafts: [JournalDraft] = []
    /// The node id of the first event's timestamp.
    public private(set) var nodeId: String?

    public init() {}

    public var startIndex: Int { drafts.startIndex }
    public var endIndex: Int { drafts.endIndex }
    public subscript(position: Int) -> JournalDraft { drafts[position] }

    public mutating func reserveCapacity(_ count: Int) { drafts.reserveCapacity(count) }

    public mutating func append(type: JournalEventType, key: borrowing String, value: RecordValue?, previousValue: RecordValue?, timestamp: borrowing Timestamp) {
        var other: String?
        if let nodeId {
            if timestamp.nodeId != nodeId { other = timestamp.nodeId }
        } else {
            nodeId = timestamp.nodeId
        }
        drafts.append(JournalDraft(
            type: type, storedKey: InlineText(key), value: value, previousValue: previousValue, millis: timestamp.millis, counter: timestamp.counter,
            otherNodeId: other))
    }

    /// The full timestamp of `draft`, one of these drafts.
    public func timestamp(of draft: JournalDraft) -> Timestamp {
        Timestamp(millis: draft.millis, counter: draft.counter, nodeId: draft.otherNodeId ?? nodeId ?? "")
    }
}

/// One map of one tenant on this node: its records in one part per partition (each with
/// its part of the map's Merkle tree), and the live queries watching the map.
///
/// An actor per map, not per partition (design.md §3 allows either; README, "Partitions"):
/// a client's batch writes one map and its keys fall in many partitions, so one hop per
/// batch rather than one per partition. Every write to the map is serialized here, merges
/// need no locks, and the events a write causes leave in the order the writes were applied.
/// A partition's parts are still loaded, streamed and dropped on their own
/// (`records(inPartition:)`, `dropPartition(_:)`).
public actor MapStore {
    public nonisolated let tenant: TenantID
    public nonisolated let name: String
    public private(set) var kind: MapKind?
    /// The kind the metadata store recorded for this map (0 until then; 1 LWW, 2 OR-Map),
    /// readable without entering the actor: a writer asks the store only when it is 0.
    private nonisolated let recordedKindCode = Atomic<UInt8>(0)
    /// The map's records, one part per partition that holds keys of it.
    private var parts = PartitionParts()
    /// The whole map's Merkle hashes (its parts' leaves summed, `MerkleHashes.summing`),
    /// kept current as the parts change: LWW parts report their (lazy) tree updates to it,
    /// OR-Map changes adjust the leaf they touched. Nil: to be rebuilt from the parts (at
    /// first use, after loading OR-Map rows, after dropping a partition).
    private var lwwHashes: MerkleHashes?
    private var orHashes: MerkleHashes?
    /// The tenant's clock (`TenantClocks`).
    private let clock: NodeClock
    /// The node's order of changes per partition, shared by every map.
    private let sequences: PartitionSequences
    /// The tenant's partition rotation, computed once (`PartitionFunction`).
    private let tenantOffset: Int
    private let codec = WireCodec()

    /// Live queries by (session, queryId).
    private var queries: [QueryKey: LiveQuery] = [:]
    /// Sessions with at least one live query here: they receive `SERVER_EVENT`s.
    private var watchers: [SessionID: Watcher] = [:]

    private struct QueryKey: Hashable {
        var session: SessionID
        var queryId: String
    }

    private struct LiveQuery {
        var subscriber: any Subscriber
        var window: LiveQueryWindow
        var fields: [String]?
        /// The partitions it covers; nil: all (a cluster's owner serves a coordinator only
        /// the partitions the coordinator expects from it).
        var partitions: Set<Int>? = nil
    }

    private struct Watcher {
        var subscriber: any Subscriber
        var queryCount: Int
    }

    public init(tenant: TenantID, name: String, clock: NodeClock, sequences: PartitionSequences = PartitionSequences()) {
        self.tenant = tenant
        self.name = name
        self.clock = clock
        self.sequences = sequences
        self.tenantOffset = PartitionFunction.tenantOffset(tenant.rawValue)
    }

    /// The partition of `key` in this map's tenant.
    private func partition(of key: borrowing String) -> Int {
        (PartitionFunction.clientPartition(forKey: copy key) + tenantOffset) % PartitionFunction.partitionCount
    }

    // MARK: - Kind

    /// The kind recorded in the metadata store (`MapKindRecorder`); nil until then.
    public nonisolated var recordedKind: MapKind? {
        switch recordedKindCode.load(ordering: .acquiring) {
        case 1: return .lww
        case 2: return .orMap
        default: return nil
        }
    }

    /// Takes the recorded kind as this map's. Records of the other kind this node held before
    /// it learned the recorded one (it decided alone while the store could not answer) stay,
    /// and further writes of their kind are refused.
    /// Returns the kind the map had here before (nil when new).
    @discardableResult
    public func adoptRecordedKind(_ recorded: MapKind) -> MapKind? {
        let held = kind
        kind = recorded
        recordedKindCode.store(recorded == .lww ? 1 : 2, ordering: .releasing)
        return held
    }

    // MARK: - Loading

    /// Installs records read from storage at start-up (no events, no persistence).
    public func restore(_ records: [StoredRecord]) {
        orHashes = nil
        for stored in records {
            let partition = partition(of: stored.key.key)
            switch stored.value {
            case .lww(let record):
                kind = kind ?? .lww
                // Rows stored before sequences existed (0) get one now: sequences within a
                // partition must differ, or a page of HTTP sync cut between two equal ones
                // would skip the rest. (A client may be sent such a row once more.)
                var sequence = stored.sequence
                if sequence == 0 {
                    sequence = sequences.next(partition: partition, nowMillis: clock.nowMillis())
                } else {
                    sequences.observe(partition: partition, sequence: sequence)
                }
                parts.part(partition).lww.merge(key: stored.key.key, record: record, sequence: sequence)
            case .orMap(let entry):
                kind = kind ?? .orMap
                let part = parts.part(partition)
                part.orMap.mergeKey(entry.key, records: entry.records, tombstones: entry.tombstones)
                _ = part.orMap.takeLeafChanges()  // the whole is rebuilt (`orHashes` is nil)
                sequences.observe(partition: partition, sequence: stored.sequence)
            case .counter:
                continue
            }
        }
    }

    // MARK: - Writes

    /// Applies client ops (all for this map) and fans the changes out to live queries and
    /// watching sessions other than the writer. `collectingRecords`: whether the result
    /// carries the changed rows for storage (not when records live in memory only).
    public func apply(_ ops: [ClientOp], writer: SessionID?, nowMillis: Int64, collectingRecords: Bool = true) -> MapApplyResult {
        var result = MapApplyResult()
        result.outcomes.reserveCapacity(ops.count)
        result.journal.reserveCapacity(ops.count)
        var changedKeys: [(key: String, partition: Int)] = []
        var events: [ServerEventPayload] = []
        events.reserveCapacity(ops.count)
        // Each op's partition, hashed once.
        let partitions = ops.indices.map { partition(of: ops[$0].key) }
        // Keys absent before this call are absent from storage too (memory holds everything
        // storage does): their rows can be plain inserts, which PostgreSQL does much faster.
        var newKeys = Set<HashedKey>()
        if collectingRecords {
            changedKeys.reserveCapacity(ops.count)
            for index in ops.indices where !hasKey(ops[index].key, partition: partitions[index]) { newKeys.insert(HashedKey(ops[index].key)) }
        }
        // `newest`: the op with the newest LWW timestamp of the batch. The clock absorbs it
        // once, not once per op (and it is not copied per op, which would retain its node id).
        // Through the buffer: iterating the array would copy (retain and release) every op.
        ops.withUnsafeBufferPointer { ops in
            var newest: UnsafePointer<ClientOp>?
            for index in ops.indices {
                let outcome = applyOne(
                    ops.baseAddress! + index, partition: partitions[index], collectingKeys: collectingRecords, changedKeys: &changedKeys, events: &events, journal: &result.journal,
                    newest: &newest, nowMillis: nowMillis)
                result.outcomes.append(outcome)
            }
            if let newest, let record = newest.pointee.record { clock.observe(record.timestamp) }
        }
        if collectingRecords { result.changedRecords = storedRecords(for: changedKeys, newKeys: newKeys) }
        broadcast(events, excluding: writer, nowMillis: nowMillis)
        return result
    }

    /// One op, read in place through a pointer into the batch: passing the op by value made
    /// the compiler copy it (retaining and releasing every field) for each of the batch's ops.
    private func applyOne(
        _ op: UnsafePointer<ClientOp>, partition: Int, collectingKeys: Bool, changedKeys: inout [(key: String, partition: Int)], events: inout [ServerEventPayload],
        journal: inout JournalDrafts, newest: inout UnsafePointer<ClientOp>?, nowMillis: Int64
    ) -> OpOutcome {
        let opType = op.pointee.opType.map(Self.opKind) ?? .unnamed
        let isORAdd = opType == .orAdd || (opType == .unnamed && op.pointee.orRecord != nil)
        let isORRemove = opType == .orRemove || (opType == .unnamed && op.pointee.orRecord == nil && op.pointee.orTag != nil && op.pointee.record == nil)
        if isORAdd || isORRemove {
            guard kind != .lww else {
                return .rejected(.badRequest, "map '\(name)' is an LWW map; OR-Map ops are not accepted")
            }
            if isORAdd {
                guard let record = op.pointee.orRecord else { return .rejected(.badRequest, "OR_ADD without orRecord") }
                kind = .orMap
                clock.observe(record.timestamp)
                if updateOR(partition: partition, { $0.apply(key: op.pointee.key, record: record) }) {
                    if collectingKeys { changedKeys.append((op.pointee.key, partition)) }
                    events.append(ServerEventPayload(mapName: name, eventType: .orAdd, key: op.pointee.key, orRecord: record))
                    journal.append(type: .put, key: op.pointee.key, value: .decoded(record.value), previousValue: nil, timestamp: record.timestamp)
                }
            } else {
                guard let tag = op.pointee.orTag else { return .rejected(.badRequest, "OR_REMOVE without orTag") }
                kind = .orMap
                if let timestamp = Timestamp(tag) { clock.observe(timestamp) }
                // Tombstones are kept by the partition of the key they are sent with: the
                // client names the key that holds the tag.
                let (previous, wasKnown) = updateOR(partition: partition) { orMap in
                    let previous = orMap.records(forKey: op.pointee.key).first { $0.tag.hasSameUTF8(as: tag) }
                    let wasKnown = orMap.isTombstoned(tag)
                    orMap.applyTombstone(tag: tag, key: op.pointee.key)
                    return (previous, wasKnown)
                }
                if !wasKnown {
                    if collectingKeys { changedKeys.append((op.pointee.key, partition)) }
                    events.append(ServerEventPayload(mapName: name, eventType: .orRemove, key: op.pointee.key, orTag: tag))
                    journal.append(
                        type: .delete, key: op.pointee.key, value: nil, previousValue: previous.map { .decoded($0.value) }, timestamp: previous?.timestamp ?? clock.now())
                }
            }
            return .applied
        }
        // The record is read through the op wherever it can be: each copy of it retains its
        // value and node id, and is released again later.
        guard op.pointee.record != nil else {
            return .rejected(.badRequest, "op on key '\(op.pointee.key)' has no record")
        }
        guard kind != .orMap else {
            return .rejected(.badRequest, "map '\(name)' is an OR-Map; LWW ops are not accepted")
        }
        kind = .lww
        if newest.map({ op.pointee.record.unsafelyUnwrapped.timestamp > $0.pointee.record.unsafelyUnwrapped.timestamp }) ?? true { newest = op }
        // The one copy the map keeps.
        // The part by reference, the merge called directly (not from a closure), so that it
        // is inlined as it was before maps were split by partition.
        let part = parts.part(partition)
        let merge = part.lww.mergeReplacing(
            key: op.pointee.key, hash: op.pointee.key.hashValue, record: op.pointee.record.unsafelyUnwrapped,
            sequence: sequences.next(partition: partition, nowMillis: nowMillis))
        guard merge.merged else { return .applied }
        let isTombstone = op.pointee.record.unsafelyUnwrapped.isTombstone
        if collectingKeys { changedKeys.append((op.pointee.key, partition)) }
        if !queries.isEmpty {
            events.append(ServerEventPayload(
                mapName: name, eventType: isTombstone ? .remove : .put, key: op.pointee.key, record: op.pointee.record.unsafelyUnwrapped))
        }
        // Moved out of the replaced record, not copied: the journal holds the only reference.
        var previousValue: RecordValue?
        if var previous = merge.previous, !previous.isExpired(nowMillis: nowMillis) { previousValue = previous.payload.take() }
        let type: JournalEventType = isTombstone ? .delete : (previousValue == nil ? .put : .update)
        journal.append(
            type: type, key: op.pointee.key, value: op.pointee.record.unsafelyUnwrapped.payload, previousValue: previousValue,
            timestamp: op.pointee.record.unsafelyUnwrapped.timestamp)
        return .applied
    }

    private enum OpKind { case orAdd, orRemove, other, unnamed }

    /// The kind of map `op` writes to, read as `apply` reads it; nil for an op `apply`
    /// rejects whatever the map's kind (an OR op without its record or tag, a put without a
    /// record). What a first write proposes to `MapKindRecorder`.
    public static func kind(of op: ClientOp) -> MapKind? {
        let opType = op.opType.map(opKind) ?? .unnamed
        let isORAdd = opType == .orAdd || (opType == .unnamed && op.orRecord != nil)
        let isORRemove = opType == .orRemove || (opType == .unnamed && op.orRecord == nil && op.orTag != nil && op.record == nil)
        if isORAdd { return op.orRecord == nil ? nil : .orMap }
        if isORRemove { return op.orTag == nil ? nil : .orMap }
        return op.record == nil ? nil : .lww
    }

    /// The op type, compared without case and without building an upper-cased copy.
    private static func opKind(_ opType: String) -> OpKind {
        func equals(_ text: String, _ upper: StaticString) -> Bool {
            let expected = UnsafeBufferPointer(start: upper.utf8Start, count: upper.utf8CodeUnitCount)
            guard text.utf8.count == expected.count else { return false }
            return zip(text.utf8, expected).allSatisfy { byte, want in
                byte == want || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") && byte - 32 == want)
            }
        }
        if equals(opType, "OR_ADD") { return .orAdd }
        if equals(opType, "OR_REMOVE") { return .orRemove }
        return .other
    }

    /// Whether storage may hold a row for `key` (anything in memory, tombstones included).
    private func hasKey(_ key: String, partition: Int) -> Bool {
        switch kind {
        case .lww: return parts[partition]?.lww.contains(HashedKey(key)) ?? false
        case .orMap: return parts[partition]?.orMap.hasState(forKey: key) ?? false
        case nil: return false
        }
    }

    /// The bytes this map's rows take in storage (their encoded values), as
    /// `ServerStorage.storedBytes` counts them.
    public func storedBytes() -> Int64 {
        switch kind {
        case .lww:
            return parts.parts.reduce(0) { sum, part in
                part.lww.entries.reduce(sum) { $0 + Int64(StoredValueCodec.encode(.lww($1.record)).count) }
            }
        case .orMap:
            return parts.parts.reduce(0) { sum, part in
                part.orMap.keysWithState.reduce(sum) { $0 + Int64(StoredValueCodec.encode(.orMap(part.orMap.entry(forKey: $1))).count) }
            }
        case nil:
            return 0
        }
    }

    /// Keys (and `newKeys`) compare byte for byte: canonically equivalent keys are distinct
    /// rows, each to be written.
    private func storedRecords(for keys: [(key: String, partition: Int)], newKeys: Set<HashedKey> = []) -> [StoredRecord] {
        var seen = Set<HashedKey>()
        var records: [StoredRecord] = []
        records.reserveCapacity(keys.count)
        for (key, partitionId) in keys where seen.insert(HashedKey(key)).inserted {
            let storageKey = StorageKey(tenant: tenant, mapName: name, key: key)
            switch kind {
            case .lww:
                if let (record, sequence) = parts[partitionId]?.lww.sequencedRecord(forKey: key) {
                    records.append(StoredRecord(
                        key: storageKey, partition: partitionId, value: .lww(record), mayExistInStorage: !newKeys.contains(HashedKey(key)),
                        sequence: sequence))
                }
            case .orMap:
                // OR-Map keys keep no sequence in memory (HTTP sync carries LWW maps only); the
                // row still gets one, so that stored rows are ordered alike.
                let entry = parts[partitionId]?.orMap.entry(forKey: key) ?? ORMapEntry(key: key, records: [], tombstones: [])
                records.append(StoredRecord(
                    key: storageKey, partition: partitionId, value: .orMap(entry), mayExistInStorage: !newKeys.contains(HashedKey(key)),
                    sequence: sequences.next(partition: partitionId, nowMillis: clock.nowMillis())))
            case nil:
                break
            }
        }
        return records
    }

    // MARK: - Fan-out

    /// The value a live query sees for `key`: nil when absent, deleted or expired.
    private func queryValue(forKey key: String, nowMillis: Int64) -> DataValue? {
        switch kind {
        case .lww: return parts[partition(of: key)]?.lww.value(forKey: key, nowMillis: nowMillis)
        case .orMap:
            let values = parts[partition(of: key)]?.orMap.values(forKey: key, nowMillis: nowMillis) ?? []
            return values.isEmpty ? nil : .array(values)
        case nil: return nil
        }
    }

    private func broadcast(_ events: [ServerEventPayload], excluding writer: SessionID?, nowMillis: Int64) {
        guard !events.isEmpty, !queries.isEmpty else { return }
        let timestamp = clock.now()
        // Drains go to each session's event loop in chunks (FanOutBatch), those of this loop
        // at once, after every frame of the write is queued: a session watching the map and
        // running live queries on it gets its `SERVER_EVENT` and its `QUERY_UPDATE`s in one
        // write (one system call instead of two per session: the kernel's socket writes are
        // most of a fan-out's cost).
        var batch = FanOutBatch(holdingDrains: true)
        defer { batch.flush() }
        for event in events {
            // Encoded once; every watcher is handed the same buffer.
            let frame = ByteBuffer(bytes: codec.encode(.serverEvent(ServerEvent(payload: event, timestamp: timestamp))))
            for (id, watcher) in watchers where id != writer {
                watcher.subscriber.send(frame: frame, in: &batch)
            }
        }
        var updatedKeys = Set<HashedKey>()
        for event in events where updatedKeys.insert(HashedKey(event.key)).inserted {
            let value = queryValue(forKey: event.key, nowMillis: nowMillis)
            var updates = QueryUpdateFanOut(writtenKey: event.key)
            // Windows are updated in place through the values view: copying a query out and
            // back would copy its whole window on every write.
            var index = queries.startIndex
            var eventPartition: Int?
            while index != queries.endIndex {
                defer { queries.formIndex(after: &index) }
                if let covered = queries.values[index].partitions {
                    if eventPartition == nil { eventPartition = partition(of: event.key) }
                    guard covered.contains(eventPartition!) else { continue }
                }
                let changes = queries.values[index].window.apply(key: event.key, value: value) { key in
                    self.queryValue(forKey: key, nowMillis: nowMillis)
                }
                guard !changes.isEmpty else { continue }
                let key = queries.keys[index]
                let query = queries.values[index]
                for change in changes {
                    updates.send(change, queryId: key.queryId, fields: query.fields, to: query.subscriber, in: &batch)
                }
            }
        }
    }

    // MARK: - Live queries

    /// The live records a query runs over (no tombstones, no expired records).
    public func queryRecords(nowMillis: Int64) -> [QueryRecord] {
        liveRecords(nowMillis: nowMillis)
    }

    /// The live records, each value decoded as it is read and dropped after: what queries
    /// scan, so that a query over a large map never holds every value at once.
    private func liveEntries(nowMillis: Int64) -> AnySequence<(key: String, value: DataValue)> {
        switch kind {
        case .lww:
            return AnySequence(parts.parts.lazy.flatMap { part in
                part.lww.entries.lazy.compactMap { key, record -> (key: String, value: DataValue)? in
                    guard record.payload != nil, !record.isExpired(nowMillis: nowMillis), let value = record.value else { return nil }
                    return (key, value)
                }
            })
        case .orMap:
            return AnySequence(parts.parts.lazy.flatMap { part in
                part.orMap.keys.lazy.compactMap { key -> (key: String, value: DataValue)? in
                    let values = part.orMap.values(forKey: key, nowMillis: nowMillis)
                    return values.isEmpty ? nil : (key, .array(values))
                }
            })
        case nil:
            return AnySequence([])
        }
    }

    /// One page of a one-shot query, at most `maxBytes` of results (each row costing what
    /// `cost` says); values are read for the page's rows only.
    public func queryPage(_ query: Query, nowMillis: Int64, maxBytes: Int, cost: @escaping @Sendable (QueryRecord) -> Int) -> QueryPage {
        QueryExecutor().execute(
            query, records: liveEntries(nowMillis: nowMillis), nowMillis: nowMillis,
            budget: QueryExecutor.ByteBudget(maxBytes: maxBytes, cost: cost)
        ) { key in self.queryValue(forKey: key, nowMillis: nowMillis) }
    }

    private func liveRecords(nowMillis: Int64) -> [QueryRecord] {
        switch kind {
        case .lww:
            return parts.parts.flatMap { part in
                part.lww.entries.compactMap { key, record in
                    guard let value = record.value, !record.isExpired(nowMillis: nowMillis) else { return nil }
                    return QueryRecord(key: key, value: value)
                }
            }
        case .orMap:
            return parts.parts.flatMap { part in
                part.orMap.keys.compactMap { key in
                    let values = part.orMap.values(forKey: key, nowMillis: nowMillis)
                    return values.isEmpty ? nil : QueryRecord(key: key, value: .array(values))
                }
            }
        case nil:
            return []
        }
    }

    /// Runs a query, sends its `QUERY_RESP` to `subscriber` and, unless it pages with a cursor
    /// or groups, keeps it live for `QUERY_UPDATE`s. The response is sent from here, inside
    /// the actor, so that no update of the query can overtake it.
    ///
    /// No response grows with the data: the `QUERY_RESP` holds at most `pageBytes` of results
    /// (at least one). A live query's further results follow as `QUERY_UPDATE` ENTER frames,
    /// page by page (`sendNextResultPage`), as the client reads; a one-shot query's page is cut
    /// with `hasMore` and a `nextCursor` instead. Returns whether pages remain to be sent.
    ///
    /// `partitions`: the live query covers only these partitions' keys (nil: every key).
    public func subscribe(_ sub: QuerySub, subscriber: any Subscriber, nowMillis: Int64, pageBytes: Int = .max, partitions: Set<Int>? = nil) -> Bool {
        let cost = Self.resultCost(fields: sub.fields)
        guard sub.query.cursor == nil, !sub.query.isGrouped else {
            let page = queryPage(sub.query, nowMillis: nowMillis, maxBytes: pageBytes, cost: cost)
            subscriber.send(.queryResp(QueryResp(
                queryId: sub.queryId, results: page.results.map { Self.resultItem($0, fields: sub.fields) }, nextCursor: page.nextCursor,
                hasMore: page.hasMore, cursorStatus: sub.query.cursor == nil ? nil : page.cursorStatus)))
            return false
        }
        // A live result has no server cap: what does not fit the first page follows in pages.
        // The window keeps positions only; values are read from the map when sent.
        let entries = liveEntries(nowMillis: nowMillis)
        var window = LiveQueryWindow(
            query: sub.query, records: partitions.map { covered in AnySequence(entries.lazy.filter { covered.contains(self.partition(of: $0.key)) }) } ?? entries,
            maxResults: .max, keepsValues: false)
        let first = window.firstPage(maxBytes: pageBytes, cost: cost) { key in self.queryValue(forKey: key, nowMillis: nowMillis) }
        let queryKey = QueryKey(session: subscriber.id, queryId: sub.queryId)
        if queries.updateValue(LiveQuery(subscriber: subscriber, window: window, fields: sub.fields, partitions: partitions), forKey: queryKey) == nil {
            watchers[subscriber.id, default: Watcher(subscriber: subscriber, queryCount: 0)].queryCount += 1
        }
        let continuation = window.continuation(nowMillis: nowMillis)
        subscriber.send(.queryResp(QueryResp(
            queryId: sub.queryId, results: first.map { Self.resultItem($0, fields: sub.fields) }, nextCursor: continuation.nextCursor,
            hasMore: continuation.hasMore, cursorStatus: nil)))
        return window.isDeliveringPages
    }

    /// Sends the next page of a live query's first result, as `QUERY_UPDATE` ENTER frames of
    /// at most `maxBytes` in all (at least one); returns whether more remain.
    public func sendNextResultPage(queryId: String, session: SessionID, maxBytes: Int) -> Bool {
        let queryKey = QueryKey(session: session, queryId: queryId)
        guard let index = queries.index(forKey: queryKey), queries.values[index].window.isDeliveringPages else { return false }
        let fields = queries.values[index].fields
        let nowMillis = clock.nowMillis()
        let page = queries.values[index].window.nextPage(maxBytes: maxBytes, cost: Self.resultCost(fields: fields)) { key in
            self.queryValue(forKey: key, nowMillis: nowMillis)
        }
        let subscriber = queries.values[index].subscriber
        for record in page {
            let item = Self.resultItem(record, fields: fields)
            subscriber.send(.queryUpdate(QueryUpdate(queryId: queryId, key: item.key, value: item.value, changeType: .enter)))
        }
        return queries.values[index].window.isDeliveringPages
    }

    private static func resultItem(_ record: QueryRecord, fields: [String]?) -> QueryResultItem {
        QueryResultItem(key: record.key, value: fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value)
    }

    /// The encoded bytes a result row adds to a response (its key and projected value, and
    /// the framing of a result item), what pages are cut by.
    private static func resultCost(fields: [String]?) -> @Sendable (QueryRecord) -> Int {
        { record in
            let value = fields.map { FieldProjection.project(record.value, fields: $0) } ?? record.value
            return 12 + MessagePackWriter.stringSize(record.key) + MessagePackWriter.encodedSize(of: value)
        }
    }

    /// Ends one live query; returns whether it existed.
    @discardableResult
    public func unsubscribe(queryId: String, session: SessionID) -> Bool {
        guard queries.removeValue(forKey: QueryKey(session: session, queryId: queryId)) != nil else { return false }
        releaseWatcher(session)
        return true
    }

    /// Forgets everything a closed session had here.
    public func removeSession(_ session: SessionID) {
        queries = queries.filter { $0.key.session != session }
        watchers.removeValue(forKey: session)
    }

    private func releaseWatcher(_ session: SessionID) {
        guard var watcher = watchers[session] else { return }
        watcher.queryCount -= 1
        watchers[session] = watcher.queryCount > 0 ? watcher : nil
    }

    public var liveQueryCount: Int { queries.count }

    // MARK: - LWW Merkle sync

    /// The whole map's LWW Merkle hashes: its parts' leaves summed, the levels above
    /// recomputed (`MerkleHashes.summing`). Kept until the next change.
    private func lwwMerkleHashes() -> MerkleHashes {
        guard kind == .lww else { return MerkleHashes() }
        // Moved out while the parts update it: a second reference would copy it.
        var whole = lwwHashes
        lwwHashes = nil
        for part in parts.parts { part.lww.refreshTree(alsoUpdating: &whole) }
        if whole == nil {
            var partHashes: [MerkleHashes] = []
            partHashes.reserveCapacity(parts.parts.count)
            for part in parts.parts { partHashes.append(part.lww.merkleTree.hashes) }
            whole = MerkleHashes.summing(partHashes)
        }
        lwwHashes = whole
        return whole!
    }

    public func lwwRootHash() -> UInt32 {
        lwwMerkleHashes().rootHash
    }

    /// The reply to `MERKLE_REQ_BUCKET`: a leaf's records (tombstones included) or the
    /// child buckets of an inner node (empty for unknown paths).
    public func lwwBucket(path: String) -> TopGunMessage {
        let hashes = lwwMerkleHashes()
        if hashes.isNonEmptyLeaf(path) {
            // A leaf's keys lie in every partition: each part's tree knows its own.
            var records: [SyncLeafRecord] = []
            for part in parts.parts {
                for key in part.lww.merkleTree.keys(inLeaf: path) {
                    if let record = part.lww.record(forKey: key) { records.append(SyncLeafRecord(key: key, record: record)) }
                }
            }
            records.sort { $0.key < $1.key }
            return .syncRespLeaf(SyncRespLeaf(mapName: name, path: path, records: records))
        }
        let buckets = hashes.buckets(atPath: path).map { (key: String($0.digit), value: $0.hash) }
        return .syncRespBuckets(SyncRespBuckets(mapName: name, path: path, buckets: WireDictionary(buckets)))
    }

    /// The LWW records (tombstones included) changed after `position`, in the order this
    /// node changed them (by partition, then sequence), at most `maxBytes` of them (at least
    /// one), and the position once they are sent (HTTP sync deltas, protocol.md §7.1).
    public func lwwDelta(after position: SyncPosition, maxBytes: Int) -> (records: [(key: String, record: LWWRecord)], next: SyncPosition) {
        let merged = SyncDelta.merge([lwwChanges(after: position, maxBytes: maxBytes)], after: position, maxBytes: maxBytes)
        return (merged.changes.map { ($0.key, $0.record) }, merged.next)
    }

    /// This node's part of a delta: its partitions' LWW changes after `position`, cut at
    /// `maxBytes` (a cluster's node merges its owners' parts, `SyncDelta.merge`).
    public func lwwChanges(after position: SyncPosition, maxBytes: Int) -> SyncDelta {
        guard kind == .lww else { return SyncDelta(changes: [], cutAt: nil, largest: [:]) }
        var candidates: [SyncDelta.Change] = []
        var largest: [Int: Int64] = [:]
        let isLegacy = position.legacyTimestamp != nil
        for part in parts.parts {
            let partition = part.partition
            for entry in part.lww.sequencedEntries {
                if isLegacy, entry.sequence > largest[partition] ?? -1 { largest[partition] = entry.sequence }
                if position.isNew(partition: partition, sequence: entry.sequence, timestamp: entry.record.timestamp) {
                    candidates.append(SyncDelta.Change(partition: partition, sequence: entry.sequence, key: entry.key, record: entry.record))
                }
            }
        }
        return SyncDelta.cut(candidates, largest: largest, maxBytes: maxBytes)
    }

    // MARK: - A map's part of the tree, for a node that assembles the whole (cluster)

    /// The leaves of this node's part of the map's tree (its partitions), LWW or OR-Map.
    public func merkleLeaves(orMap: Bool) -> [Int: MerkleHashes.Leaf] {
        orMap ? orMerkleHashes().leaves : lwwMerkleHashes().leaves
    }

    /// The LWW records of this node's partitions in the leaf at `path`.
    public func lwwLeafRecords(path: String) -> [SyncLeafRecord] {
        var records: [SyncLeafRecord] = []
        for part in parts.parts {
            for key in part.lww.merkleTree.keys(inLeaf: path) {
                if let record = part.lww.record(forKey: key) { records.append(SyncLeafRecord(key: key, record: record)) }
            }
        }
        return records
    }

    /// The OR-Map entries of this node's partitions in the leaf at `path`.
    public func orLeafEntries(path: String) -> [ORMapEntry] {
        var entries: [ORMapEntry] = []
        for part in parts.parts {
            for key in part.orMap.merkleTree.keys(inLeaf: path) { entries.append(part.orMap.entry(forKey: key)) }
        }
        return entries
    }

    // MARK: - OR-Map Merkle sync

    /// The whole map's OR-Map Merkle hashes, as `lwwMerkleHashes`.
    private func orMerkleHashes() -> MerkleHashes {
        guard kind == .orMap else { return MerkleHashes() }
        if let orHashes { return orHashes }
        let hashes = MerkleHashes.summing(parts.parts.lazy.map(\.orMap.merkleTree.hashes))
        orHashes = hashes
        return hashes
    }

    public func orRootHash() -> UInt32 {
        orMerkleHashes().rootHash
    }

    public func orBucket(path: String) -> TopGunMessage {
        let hashes = orMerkleHashes()
        if hashes.isNonEmptyLeaf(path) {
            var entries: [ORMapEntry] = []
            for part in parts.parts {
                for key in part.orMap.merkleTree.keys(inLeaf: path) { entries.append(part.orMap.entry(forKey: key)) }
            }
            entries.sort { $0.key < $1.key }
            return .ormapSyncRespLeaf(ORMapSyncRespLeaf(mapName: name, path: path, entries: entries))
        }
        let buckets = hashes.buckets(atPath: path).map { (key: String($0.digit), value: $0.hash) }
        return .ormapSyncRespBuckets(ORMapSyncRespBuckets(mapName: name, path: path, buckets: WireDictionary(buckets)))
    }

    /// Changes the OR-Map part of `partition`, keeping the whole map's hashes current: a
    /// whole's leaf moves by exactly what that leaf of the part moved (leaves are sums).
    private func updateOR<Result>(partition: Int, _ body: (inout ORMap) -> Result) -> Result {
        let part = parts.part(partition)
        let result = body(&part.orMap)
        for change in part.orMap.takeLeafChanges() { orHashes?.adjustLeaf(change.leaf, from: change.before, to: change.after) }
        return result
    }

    public func orEntries(keys: [String]) -> [ORMapEntry] {
        keys.map { key in parts[partition(of: key)]?.orMap.entry(forKey: key) ?? ORMapEntry(key: key, records: [], tombstones: []) }
    }

    /// Merges entries a client pushed (`ORMAP_PUSH_DIFF`); new records and tombstones are
    /// broadcast and persisted.
    public func pushDiff(_ entries: [ORMapEntry], writer: SessionID?, nowMillis: Int64) -> MapApplyResult {
        var result = MapApplyResult()
        guard kind != .lww else {
            result.outcomes = [.rejected(.badRequest, "map '\(name)' is an LWW map")]
            return result
        }
        kind = .orMap
        var events: [ServerEventPayload] = []
        var changedKeys: [(key: String, partition: Int)] = []
        for entry in entries {
            for record in entry.records { clock.observe(record.timestamp) }
            let partition = partition(of: entry.key)
            let (before, beforeTombstones, after, afterTombstones) = updateOR(partition: partition) { orMap in
                let before = orMap.records(forKey: entry.key)
                let beforeTombstones = orMap.tombstones(forKey: entry.key)
                orMap.mergeKey(entry.key, records: entry.records, tombstones: entry.tombstones)
                return (before, beforeTombstones, orMap.records(forKey: entry.key), orMap.tombstones(forKey: entry.key))
            }
            guard before != after || beforeTombstones != afterTombstones else { continue }
            changedKeys.append((entry.key, partition))
            let previous = Set(before)
            for record in after where !previous.contains(record) {
                events.append(ServerEventPayload(mapName: name, eventType: .orAdd, key: entry.key, orRecord: record))
                result.journal.append(type: .put, key: entry.key, value: .decoded(record.value), previousValue: nil, timestamp: record.timestamp)
            }
            let knownTombstones = Set(beforeTombstones.map(HashedKey.init))
            for tag in afterTombstones where !knownTombstones.contains(HashedKey(tag)) {
                events.append(ServerEventPayload(mapName: name, eventType: .orRemove, key: entry.key, orTag: tag))
            }
        }
        result.outcomes = [.applied]
        result.changedRecords = storedRecords(for: changedKeys)
        broadcast(events, excluding: writer, nowMillis: nowMillis)
        return result
    }

    // MARK: - Partitions

    /// The partitions that hold keys of this map.
    public var partitions: [Int] { parts.partitions }

    /// Every record this map holds in `partition`, with its exact timestamps, OR tags and
    /// tombstones and the sequence of its last change: what loading the partition elsewhere
    /// needs (`restore` takes these rows back).
    public func records(inPartition partition: Int) -> [StoredRecord] {
        guard let part = parts[partition] else { return [] }
        var records: [StoredRecord] = []
        switch kind {
        case .lww:
            records.reserveCapacity(part.lww.count)
            for entry in part.lww.sequencedEntries {
                records.append(StoredRecord(
                    key: StorageKey(tenant: tenant, mapName: name, key: entry.key), partition: partition, value: .lww(entry.record),
                    sequence: entry.sequence))
            }
        case .orMap:
            // OR-Map keys keep no sequence in memory (see `storedRecords`).
            for key in part.orMap.keysWithState {
                records.append(StoredRecord(
                    key: StorageKey(tenant: tenant, mapName: name, key: key), partition: partition, value: .orMap(part.orMap.entry(forKey: key))))
            }
        case nil:
            break
        }
        return records
    }

    /// This map's part of the Merkle tree in `partition` (empty when it holds no key there).
    public func merkleHashes(inPartition partition: Int) -> MerkleHashes {
        switch kind {
        case .lww:
            // Through the whole: a part's tree is brought up to date only together with it.
            _ = lwwMerkleHashes()
            return parts[partition]?.lww.merkleTree.hashes ?? MerkleHashes()
        case .orMap: return parts[partition]?.orMap.merkleTree.hashes ?? MerkleHashes()
        case nil: return MerkleHashes()
        }
    }

    /// Forgets what this map holds in `partition` (the partition left this node, or is to be
    /// reloaded). Live queries keep their results: the keys they hold from the partition
    /// leave them when those keys next change here. Returns how many keys were dropped.
    @discardableResult
    public func dropPartition(_ partition: Int) -> Int {
        guard let part = parts.remove(partition) else { return 0 }
        lwwHashes = nil
        orHashes = nil
        return part.lww.count + part.orMap.keysWithState.count
    }

    // MARK: - Introspection

    public var recordCount: Int {
        switch kind {
        case .lww: return parts.parts.reduce(0) { $0 + $1.lww.count }
        case .orMap: return parts.parts.reduce(0) { $0 + $1.orMap.keyCount }
        case nil: return 0
        }
    }
}
