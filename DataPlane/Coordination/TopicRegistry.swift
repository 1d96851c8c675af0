import Tenancy
import TopGunCore
import TopGunWire

/// Pub/sub topics of a node, keyed by tenant: a message goes to every subscriber of the
/// topic except the publisher's own connection (protocol.md §6.6.7).
public actor TopicRegistry {
    /// A topic of a tenant.
    public typealias TopicKey = TenantScopedName

    /// Most topics one connection may subscribe to.
    public static let maxSubscriptionsPerSession = 100

    private var subscribers: [TopicKey: [SessionID: any Subscriber]] = [:]
    private var topicsBySession: [SessionID: Set<TopicKey>] = [:]

    public init() {}

    /// Topic names are 1–256 characters of `[A-Za-z0-9_\-.:/]`.
    public static func isValidName(_ topic: String) -> Bool {
        guard (1...256).contains(topic.utf8.count) else { return false }
        return topic.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"):
                return true
            default:
                return false
            }
        }
    }

    public enum SubscribeResult: Sendable, Equatable {
        case subscribed
        case tooManySubscriptions
    }

    public func subscribe(_ topic: String, tenant: TenantID, subscriber: any Subscriber) -> SubscribeResult {
        let key = TopicKey(tenant: tenant, name: topic)
        var topics = topicsBySession[subscriber.id] ?? []
        if !topics.contains(key) && topics.count >= Self.maxSubscriptionsPerSession { return .tooManySubscriptions }
        topics.insert(key)
        topicsBySession[subscriber.id] = topics
        subscribers[key, default: [:]][subscriber.id] = subscriber
        return .subscribed
    }

    public func unsubscribe(_ topic: String, tenant: TenantID, session: SessionID) {
        let key = TopicKey(tenant: tenant, name: topic)
        topicsBySession[session]?.remove(key)
        subscribers[key]?.removeValue(forKey: session)
        if subscribers[key]?.isEmpty == true { subscribers.removeValue(forKey: key) }
    }

    /// Delivers to every other subscriber; returns how many received it.
    @discardableResult
    public func publish(_ topic: String, data: DataValue, tenant: TenantID, publisher: SessionID, nowMillis: Int64) -> Int {
        let message = TopGunMessage.topicMessage(TopicMessage(topic: topic, data: data, publisherId: publisher.description, timestamp: nowMillis))
        return deliver(encoded: WireCodec().encode(message), topic: topic, tenant: tenant, except: publisher)
    }

    /// Delivers an encoded `TOPIC_MESSAGE` to the topic's subscribers on this node but
    /// `except` (a message published on another node comes this way, encoded once there).
    @discardableResult
    public func deliver(encoded bytes: [UInt8], topic: String, tenant: TenantID, except publisher: SessionID? = nil) -> Int {
        guard let targets = subscribers[TopicKey(tenant: tenant, name: topic)] else { return 0 }
        var delivered = 0
        for (id, subscriber) in targets where id != publisher {
            subscriber.send(encoded: bytes)
            delivered += 1
        }
        return delivered
    }

    /// Forgets every subscription to a deleted tenant's topics.
    public func removeTenant(_ tenant: TenantID) {
        subscribers = subscribers.filter { $0.key.tenant != tenant }
        for (session, keys) in topicsBySession where keys.contains(where: { $0.tenant == tenant }) {
            let kept = keys.filter { $0.tenant != tenant }
            topicsBySession[session] = kept.isEmpty ? nil : kept
        }
    }

    public func removeSession(_ session: SessionID) {
        for key in topicsBySession.removeValue(forKey: session) ?? [] {
            subscribers[key]?.removeValue(forKey: session)
            if subscribers[key]?.isEmpty == true { subscribers.removeValue(forKey: key) }
        }
    }
}
