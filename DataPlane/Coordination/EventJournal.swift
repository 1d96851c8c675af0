import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// The ordered change log of each tenant (protocol.md §6.6.11): the last `capacity` events
/// in memory, sequence numbers counting up from 1 per tenant. Kept in memory only: after a
/// restart sequences start again (the README says so).
///
/// A mutex rather than an actor: every write batch appends here, and an append is a few
/// stores into a ring, not worth two task hops. Events are kept as their drafts and become
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

    struct Entry {
        var sequence: UInt64
        var draft: JournalDraft
    }

    struct Log {
        var entries: [Entry] = []
        var start = 0  // ring buffer head
        var nextSequence: UInt64 = 1
        var subscriptions: [String: Subscription] = [:]

        /// The entries oldest first.
        func forEachEntry(_ body: (Entry) -> Bool) {
            for index in 0..<entries.count where !body(entries[(start + index) % entries.count]) { return }
        }
    }

    struct Subscription {
        var session: SessionID
        var outbound: SessionOutbound
        var mapName: String?
        var types: Set<JournalEventType>?
    }

    public init(nodeId: String, capacity: Int = 10_000) {
        self.nodeId = nodeId
        self.capacity = max(1, capacity)
    }

    public func append(_ drafts: [JournalDraft], tenant: TenantID) {
        guard !drafts.isEmpty else { return }
        let capacity = self.capacity
        let nodeId = self.nodeId
        state.withLock { state in
            guard !state.purgedTenants.contains(tenant) else { return }
            // Mutated in place through the dictionary: copying the log out and back would copy
            // the whole ring buffer on every write.
            Self.append(drafts, to: &state.logs[tenant, default: Log()], capacity: capacity, nodeId: nodeId)
        }
    }

    private static func append(_ drafts: [JournalDraft], to log: inout Log, capacity: Int, nodeId: String) {
        for draft in drafts {
            let entry = Entry(sequence: log.nextSequence, draft: draft)
            log.nextSequence += 1
            if log.entries.count < capacity {
                log.entries.append(entry)
            } else {
                log.entries[log.start] = entry
                log.start = (log.start + 1) % capacity
            }
            // Sends only enqueue onto the subscriber's channel; nothing here waits.
            for subscription in log.subscriptions.values where matches(draft, subscription.mapName, subscription.types) {
                subscription.outbound.send(.journalEventMessage(JournalEventMessage(event: event(entry, nodeId: nodeId))))
            }
        }
    }

    private static func event(_ entry: Entry, nodeId: String) -> JournalEvent {
        let draft = entry.draft
        return JournalEvent(
            sequence: String(entry.sequence), type: draft.type, mapName: draft.mapName, key: draft.key,
            value: draft.value, previousValue: draft.previousValue, timestamp: draft.timestamp, nodeId: nodeId)
    }

    /// Events with sequence ≥ `fromSequence`, oldest first.
    public func read(tenant: TenantID, fromSequence: UInt64, limit: Int, mapName: String?) -> (events: [JournalEvent], hasMore: Bool) {
        let nodeId = self.nodeId
        return state.withLock { state in
            guard let log = state.logs[tenant] else { return ([], false) }
            var result: [JournalEvent] = []
            var hasMore = false
            log.forEachEntry { entry in
                guard entry.sequence >= fromSequence else { return true }
                if let mapName, entry.draft.mapName != mapName { return true }
                if result.count == limit {
                    hasMore = true
                    return false
                }
                result.append(Self.event(entry, nodeId: nodeId))
                return true
            }
            return (result, hasMore)
        }
    }

    /// Pushes matching events from now on, after replaying those from `fromSequence`.
    public func subscribe(
        tenant: TenantID, subscriptionId: String, fromSequence: UInt64?, mapName: String?, types: [JournalEventType]?, outbound: SessionOutbound
    ) {
        let nodeId = self.nodeId
        state.withLock { state in
            guard !state.purgedTenants.contains(tenant) else { return }
            let typeSet = types.map(Set.init)
            var log = state.logs[tenant] ?? Log()
            if let fromSequence {
                log.forEachEntry { entry in
                    if entry.sequence >= fromSequence, Self.matches(entry.draft, mapName, typeSet) {
                        outbound.send(.journalEventMessage(JournalEventMessage(event: Self.event(entry, nodeId: nodeId))))
                    }
                    return true
                }
            }
            log.subscriptions[Self.subscriptionKey(outbound.id, subscriptionId)] = Subscription(
                session: outbound.id, outbound: outbound, mapName: mapName, types: typeSet)
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

    static func matches(_ draft: JournalDraft, _ mapName: String?, _ types: Set<JournalEventType>?) -> Bool {
        if let mapName, draft.mapName != mapName { return false }
        if let types, !types.contains(draft.type) { return false }
        return true
    }
}
