import Tenancy
import TopGunWire

/// Pub/sub topics (protocol.md §6.6.6): subscriptions count against the tenant's
/// subscriptions quota and a connection's own limit; a message reaches every subscriber but
/// its publisher.
public struct TopicHandler: Sendable {
    let topics: TopicRegistry
    let policies: TenantPolicies
    let clock: NodeClock
    let replies: ErrorReplies
    /// On a node of a cluster: the other nodes' subscribers.
    var cluster: ClusterCoordination?

    public init(topics: TopicRegistry, policies: TenantPolicies, clock: NodeClock, metrics: DataPlaneMetrics) {
        self.topics = topics
        self.policies = policies
        self.clock = clock
        self.replies = ErrorReplies(metrics: metrics)
    }

    func subscribe(_ sub: TopicSub, context: RequestContext, out: SessionOutbound) async {
        guard validName(sub.topic, out) else { return }
        if let refusal = await policies.acquireSubscription(context.tenant, session: out.id, key: "topic:" + sub.topic) {
            return replies.refused(refusal, to: out)
        }
        if await topics.subscribe(sub.topic, tenant: context.tenant, subscriber: out) == .tooManySubscriptions {
            policies.releaseSubscription(session: out.id, key: "topic:" + sub.topic)
            out.send(.errorMessage(.make(
                .rateLimited, "at most \(TopicRegistry.maxSubscriptionsPerSession) topic subscriptions per connection",
                details: ["quota": "topicSubscriptions", "retryAfterMs": 0])))
        }
    }

    func unsubscribe(_ unsub: TopicUnsub, context: RequestContext, out: SessionOutbound) async {
        policies.releaseSubscription(session: out.id, key: "topic:" + unsub.topic)
        await topics.unsubscribe(unsub.topic, tenant: context.tenant, session: out.id)
    }

    func publish(_ pub: TopicPub, context: RequestContext, out: SessionOutbound) async {
        guard validName(pub.topic, out) else { return }
        guard let cluster else {
            await topics.publish(pub.topic, data: pub.data, tenant: context.tenant, publisher: out.id, nowMillis: clock.nowMillis())
            return
        }
        // Encoded once, here: every node delivers the same bytes.
        let bytes = WireCodec().encode(.topicMessage(TopicMessage(
            topic: pub.topic, data: pub.data, publisherId: cluster.publisherId(out.id), timestamp: clock.nowMillis())))
        await topics.deliver(encoded: bytes, topic: pub.topic, tenant: context.tenant, except: out.id)
        cluster.publish(encoded: bytes, topic: pub.topic, tenant: context.tenant)
    }

    private func validName(_ topic: String, _ out: SessionOutbound) -> Bool {
        guard TopicRegistry.isValidName(topic) else {
            replies.badRequest("topic names are 1-256 characters of A-Z a-z 0-9 _ - . : /", field: "topic", to: out)
            return false
        }
        return true
    }
}
