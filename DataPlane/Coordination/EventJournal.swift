import Tenancy
import TopGunCore
import TopGunWire

/// The ordered change log of each tenant (protocol.md §6.6.11): the last `capacity` events
/// in memory, sequence numbers counting up from 1 per tenant. Kept in memory only: after a
/// restart sequences start again (the README says so).
public actor EventJournal {
    public let capacity: Int
    private let nodeId: String
    private var logs: [TenantID: Log] = [:]
    /// Deleted tenants: their log is gone for good.
    private var purgedTenants = Set<TenantID>()

    struct Log {
        var events: [JournalEvent] = []
        var start = 0  // ring buffer head
        var nextSequence: UInt64 = 1
        var subscriptions: [String: Subscription] = [:]
    }

    struct Subscription {
        var session: SessionID
        var outbound: SessionOutbound
        var mapName: String?
        var types: Set<JournalEventType>?
    }

    public init(nodeId: String, capacity: Int = 10_000) {
        self.nodeId = nodeId
        self.capacity = capacity
    }

    public func append(_ drafts: [JournalDraft], tenant: TenantID) {
        guard !drafts.isEmpty, !purgedTenants.contains(tenant) else { return }
        // Mutated in place through the dictionary: copying the log out and back would copy
        // the whole ring buffer on every write.
        Self.append(drafts, to: &logs[tenant, default: Log()], capacity: capacity, nodeId: nodeId)
    }

    private static func append(_ drafts: [JournalDraft], to log: inout Log, capacity: Int, nodeId: String) {
        for draft in drafts {
            let event = JournalEvent(
                sequence: String(log.nextSequence), type: draft.type, mapName: draft.mapName, key: draft.key,
                value: draft.value, previousValue: draft.previousValue, timestamp: draft.timestamp, nodeId: nodeId)
            log.nextSequence += 1
            if log.events.count < capacity {
                log.events.append(event)
            } else {
                log.events[log.start] = event
                log.start = (log.start + 1) % capacity
            }
            for subscription in log.subscriptions.values where Self.matches(event, subscription.mapName, subscription.types) {
                subscription.outbound.send(.journalEventMessage(JournalEventMessage(event: event)))
            }
        }
    }

    /// Events with sequence ≥ `fromSequence`, oldest first.
    public func read(tenant: TenantID, fromSequence: UInt64, limit: Int, mapName: String?) -> (events: [JournalEvent], hasMore: Bool) {
        guard let log = logs[tenant] else { return ([], false) }
        var result: [JournalEvent] = []
        var hasMore = false
        for index in 0..<log.events.count {
            let event = log.events[(log.start + index) % max(log.events.count, 1)]
            guard let sequence = UInt64(event.sequence), sequence >= fromSequence else { continue }
            if let mapName, event.mapName != mapName { continue }
            if result.count == limit {
                hasMore = true
                break
            }
            result.append(event)
        }
        return (result, hasMore)
    }

    /// Pushes matching events from now on, after replaying those from `fromSequence`.
    public func subscribe(
        tenant: TenantID, subscriptionId: String, fromSequence: UInt64?, mapName: String?, types: [JournalEventType]?, outbound: SessionOutbound
    ) {
        guard !purgedTenants.contains(tenant) else { return }
        var log = logs[tenant] ?? Log()
        let typeSet = types.map(Set.init)
        if let fromSequence {
            for index in 0..<log.events.count {
                let event = log.events[(log.start + index) % log.events.count]
                if let sequence = UInt64(event.sequence), sequence >= fromSequence, Self.matches(event, mapName, typeSet) {
                    outbound.send(.journalEventMessage(JournalEventMessage(event: event)))
                }
            }
        }
        log.subscriptions[Self.subscriptionKey(outbound.id, subscriptionId)] = Subscription(
            session: outbound.id, outbound: outbound, mapName: mapName, types: typeSet)
        logs[tenant] = log
    }

    public func unsubscribe(tenant: TenantID, subscriptionId: String, session: SessionID) {
        logs[tenant]?.subscriptions.removeValue(forKey: Self.subscriptionKey(session, subscriptionId))
    }

    /// Forgets a deleted tenant's events and subscriptions, for good.
    public func removeTenant(_ tenant: TenantID) {
        purgedTenants.insert(tenant)
        logs.removeValue(forKey: tenant)
    }

    public func removeSession(_ session: SessionID) {
        for tenant in Array(logs.keys) {
            // Read, change, write back: an optional-chained assignment whose right side
            // reads `logs` again is an exclusivity violation.
            guard var log = logs[tenant] else { continue }
            log.subscriptions = log.subscriptions.filter { $0.value.session != session }
            logs[tenant] = log
        }
    }

    static func subscriptionKey(_ session: SessionID, _ id: String) -> String { "\(session.rawValue):\(id)" }

    static func matches(_ event: JournalEvent, _ mapName: String?, _ types: Set<JournalEventType>?) -> Bool {
        if let mapName, event.mapName != mapName { return false }
        if let types, !types.contains(event.type) { return false }
        return true
    }
}
