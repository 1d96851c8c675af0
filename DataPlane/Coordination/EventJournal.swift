import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// The ordered change log of each tenant (protocol.md §6.6.11): the last `capacity` events
/// in memory, sequence numbers counting up from 1 per tenant. Kept in memory only: after a
/// restart sequences start again (the README says so).
///
/// A mutex rather than an actor: every write batch appends here, and an append is a few
/// stores into a ring, not worth two task hops. Events are kept as the drafts a map's batch
/// produced, one chunk per batch and map, taken over without copying a draft; they become
/// wire `JournalEvent`s only when someone reads or subscribes.
public final class EventJournal: Sendable {
    public let capacity: Int
    private let nodeId: String
    private let state = Mutex(State())

    private struct State {
        var logs: [TenantID: Log] = [:]
        /// Deleted tenants: their log is gone for good.
        var purgedTenants = Set<TenantID>()
    }

    /// The events of one batch on one map, numbered from `firstSequence`.
    struct Chunk {
        var firstSequence: UInt64
        var mapName: String
        var drafts: JournalDrafts
    }

    struct Log {
        /// Oldest first from `head`; chunks before `head` are dropped ones not compacted yet.
        var chunks: [Chunk] = []
        var head = 0
        /// Events in `chunks[head...]`: at most `capacity` plus one batch less one.
        var eventCount = 0
        var nextSequence: UInt64 = 1
        var subscriptions: [String: Subscription] = [:]

        /// Appends a batch's events, then drops whole chunks while the rest still holds
        /// `capacity` events. A partly expired chunk stays; its expired events are skipped
        /// by `forEachEntry`.
        /// Returns the dropped drafts, for the caller to free once it has let go of the lock.
        mutating func append(_ chunk: Chunk, capacity: Int) -> [JournalDrafts] {
            eventCount += chunk.drafts.count
            chunks.append(chunk)
            var dropped: [JournalDrafts] = []
            while head < chunks.count, eventCount - chunks[head].drafts.count >= capacity {
                eventCount -= chunks[head].drafts.count
                dropped.append(chunks[head].drafts)
                chunks[head].drafts = JournalDrafts()
                head += 1
            }
            // Compacted now and then, so the dropped chunks do not pile up.
            if head >= 64, head * 2 >= chunks.count {
                chunks.removeFirst(head)
                head = 0
            }
            return dropped
        }

        /// The retained events oldest first: the last `capacity` ones.
        func forEachEntry(capacity: Int, _ body: (_ sequence: UInt64, _ mapName: String, _ draft: JournalDraft, _ timestamp: Timestamp) -> Bool) {
            let oldest = nextSequence > UInt64(capacity) ? nextSequence - UInt64(capacity) : 1
            for chunk in chunks[head...] {
                for (offset, draft) in chunk.drafts.enumerated() {
                    let sequence = chunk.firstSequence + UInt64(offset)
                    if sequence < oldest { continue }
                    if !body(sequence, chunk.mapName, draft, chunk.drafts.timestamp(of: draft)) { return }
                }
            }
        }
    }

    struct Subscription {
        var session: SessionID
        var subscriber: any Subscriber
        var mapName: String?
        var types: Set<JournalEventType>?
    }

    public init(nodeId: String, capacity: Int = 10_000) {
        self.nodeId = nodeId
        self.capacity = max(1, capacity)
    }

    /// On a node of a cluster: each tenant's events are numbered by one node, its sequencer
    /// (the owner of the tenant's journal partition, `ClusterJournal`); the others ship their
    /// events there. A sequencer numbers from above `floor`, so numbers keep increasing when the
    /// partition changes owner.
    struct Sequencing: Sendable {
        /// The tenant's sequencer (nil: this node) and the floor of its numbers.
        var sequencer: @Sendable (TenantID) -> (node: NodeID?, floor: UInt64)
        /// Sends events (numbered 0) to the tenant's sequencer.
        var ship: @Sendable (_ events: [JournalEvent], _ mapName: String, _ tenant: TenantID, _ to: NodeID) -> Void
    }

    private let sequencing = SynchronizedBox<Sequencing?>(nil)

    func sequence(by sequencing: Sequencing) {
        self.sequencing.set(sequencing)
    }

    /// Records the events of one batch on map `mapName`, in order.
    public func append(_ drafts: JournalDrafts, mapName: String, tenant: TenantID) {
        guard !drafts.isEmpty else { return }
        var floor: UInt64 = 0
        if let sequencing = sequencing.get() {
            let sequencer = sequencing.sequencer(tenant)
            if let node = sequencer.node {
                let origin = self.nodeId
                let events = drafts.map { draft in
                    Self.event(sequence: 0, mapName: mapName, draft: draft, timestamp: drafts.timestamp(of: draft), nodeId: origin)
                }
                return sequencing.ship(events, mapName, tenant, node)
            }
            floor = sequencer.floor
        }
        let capacity = self.capacity
        let nodeId = self.nodeId
        let dropped = state.withLock { state -> [JournalDrafts] in
            guard !state.purgedTenants.contains(tenant) else { return [] }
            // Mutated in place through the dictionary: copying the log out and back would copy
            // the whole ring on every write.
            return Self.append(drafts, mapName: mapName, to: &state.logs[tenant, default: Log()], capacity: capacity, nodeId: nodeId, floor: floor)
        }
        // Freed here, outside the lock: the oldest events' values are long out of cache, and
        // freeing them under the lock kept every other writer waiting.
        _ = consume dropped
    }

    /// Events another node shipped to this one, the tenant's sequencer: numbered here, in the
    /// order they arrive.
    func appendShipped(_ events: [JournalEvent], mapName: String, tenant: TenantID) {
        // No longer the sequencer (the table moved on while they travelled): on to the one that is.
        if let sequencing = sequencing.get(), let node = sequencing.sequencer(tenant).node {
            return sequencing.ship(events, mapName, tenant, node)
        }
        var drafts = JournalDrafts()
        drafts.reserveCapacity(events.count)
        for event in events {
            drafts.append(
                type: event.type, key: event.key, value: event.value.map(RecordValue.decoded), previousValue: event.previousValue.map(RecordValue.decoded),
                timestamp: event.timestamp)
        }
        let floor = sequencing.get()?.sequencer(tenant).floor ?? 0
        let (capacity, nodeId) = (self.capacity, self.nodeId)
        let dropped = state.withLock { state -> [JournalDrafts] in
            guard !state.purgedTenants.contains(tenant) else { return [] }
            return Self.append(drafts, mapName: mapName, to: &state.logs[tenant, default: Log()], capacity: capacity, nodeId: nodeId, floor: floor)
        }
        _ = consume dropped
    }

    private static func append(_ drafts: JournalDrafts, mapName: String, to log: inout Log, capacity: Int, nodeId: String, floor: UInt64 = 0) -> [JournalDrafts] {
        log.nextSequence = max(log.nextSequence, floor + 1)
        let first = log.nextSequence
        log.nextSequence += UInt64(drafts.count)
        // Sends only enqueue onto the subscriber's channel; nothing here waits.
        for subscription in log.subscriptions.values {
            for (offset, draft) in drafts.enumerated() where matches(draft, mapName: mapName, subscription.mapName, subscription.types) {
                subscription.subscriber.send(.journalEventMessage(JournalEventMessage(
                    event: event(sequence: first + UInt64(offset), mapName: mapName, draft: draft, timestamp: drafts.timestamp(of: draft), nodeId: nodeId))))
            }
        }
        return log.append(Chunk(firstSequence: first, mapName: mapName, drafts: drafts), capacity: capacity)
    }

    private static func event(sequence: UInt64, mapName: String, draft: JournalDraft, timestamp: Timestamp, nodeId: String) -> JournalEvent {
        JournalEvent(
            sequence: String(sequence), type: draft.type, mapName: mapName, key: draft.key,
            value: draft.value?.dataValue, previousValue: draft.previousValue?.dataValue, timestamp: timestamp, nodeId: nodeId)
    }

    /// Events with sequence ≥ `fromSequence`, oldest first.
    public func read(tenant: TenantID, fromSequence: UInt64, limit: Int, mapName: String?) -> (events: [JournalEvent], hasMore: Bool) {
        let nodeId = self.nodeId
        let capacity = self.capacity
        return state.withLock { state in
            guard let log = state.logs[tenant] else { return ([], false) }
            var result: [JournalEvent] = []
            var hasMore = false
            log.forEachEntry(capacity: capacity) { sequence, entryMap, draft, timestamp in
                guard sequence >= fromSequence else { return true }
                if let mapName, entryMap != mapName { return true }
                if result.count == limit {
                    hasMore = true
                    return false
                }
                result.append(Self.event(sequence: sequence, mapName: entryMap, draft: draft, timestamp: timestamp, nodeId: nodeId))
                return true
            }
            return (result, hasMore)
        }
    }

    /// Pushes matching events from now on, after replaying those from `fromSequence`.
    public func subscribe(
        tenant: TenantID, subscriptionId: String, fromSequence: UInt64?, mapName: String?, types: [JournalEventType]?, subscriber: any Subscriber
    ) {
        let nodeId = self.nodeId
        let capacity = self.capacity
        state.withLock { state in
            guard !state.purgedTenants.contains(tenant) else { return }
            let typeSet = types.map(Set.init)
            var log = state.logs[tenant] ?? Log()
            if let fromSequence {
                log.forEachEntry(capacity: capacity) { sequence, entryMap, draft, timestamp in
                    if sequence >= fromSequence, Self.matches(draft, mapName: entryMap, mapName, typeSet) {
                        subscriber.send(.journalEventMessage(JournalEventMessage(
                            event: Self.event(sequence: sequence, mapName: entryMap, draft: draft, timestamp: timestamp, nodeId: nodeId))))
                    }
                    return true
                }
            }
            log.subscriptions[Self.subscriptionKey(subscriber.id, subscriptionId)] = Subscription(
                session: subscriber.id, subscriber: subscriber, mapName: mapName, types: typeSet)
            state.logs[tenant] = log
        }
    }

    public func unsubscribe(tenant: TenantID, subscriptionId: String, session: SessionID) {
        state.withLock { state in
            _ = state.logs[tenant]?.subscriptions.removeValue(forKey: Self.subscriptionKey(session, subscriptionId))
        }
    }

    /// Forgets a deleted tenant's events and subscriptions, for good.
    public func removeTenant(_ tenant: TenantID) {
        state.withLock { state in
            state.purgedTenants.insert(tenant)
            state.logs.removeValue(forKey: tenant)
        }
    }

    public func removeSession(_ session: SessionID) {
        state.withLock { state in
            for tenant in Array(state.logs.keys) {
                state.logs[tenant]!.subscriptions = state.logs[tenant]!.subscriptions.filter { $0.value.session != session }
            }
        }
    }

    static func subscriptionKey(_ session: SessionID, _ id: String) -> String { "\(session.rawValue):\(id)" }

    static func matches(_ draft: JournalDraft, mapName draftMap: String, _ mapName: String?, _ types: Set<JournalEventType>?) -> Bool {
        if let mapName, draftMap != mapName { return false }
        if let types, !types.contains(draft.type) { return false }
        return true
    }
}
