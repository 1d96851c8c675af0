@testable import DataPlane
import NIOCore
import Synchronization
import Tenancy
import Testing
import TopGunCore
import TopGunWire

/// A subscriber that is no socket: it records what it is sent, decoded. Every domain must
/// work with it, since a session on another node will be one of these.
final class RecordingSubscriber: Subscriber {
    let id = SessionID.next()
    private let received = Mutex<[TopGunMessage]>([])

    var messages: [TopGunMessage] { received.withLock { $0 } }

    func send(_ message: TopGunMessage) {
        received.withLock { $0.append(message) }
    }

    func send(encoded bytes: [UInt8]) {
        guard let message = try? WireCodec().decode(bytes) else {
            Issue.record("a subscriber was sent bytes that do not decode")
            return
        }
        send(message)
    }

    func send(frame buffer: ByteBuffer, in batch: inout FanOutBatch) {
        send(encoded: Array(buffer.readableBytesView))
    }

    func send(_ message: TopGunMessage, in batch: inout FanOutBatch) {
        send(message)
    }
}

/// Each domain's pushes reach a subscriber that is not a session's socket.
@Suite struct SubscriberTests {
    static let tenant: TenantID = "tn_subscribers"

    @Test func liveQueriesPushToAnySubscriber() async {
        let store = MapStore(tenant: Self.tenant, name: "todos", clock: NodeClock(nodeId: "server"))
        let subscriber = RecordingSubscriber()
        _ = await store.subscribe(QuerySub(queryId: "q", mapName: "todos", query: Query()), subscriber: subscriber, nowMillis: 0)
        _ = await store.apply([MapStoreTests.put("k", "v", MapStoreTests.ts(1))], writer: nil, nowMillis: 0)
        let kinds = subscriber.messages.map(\.type)
        #expect(kinds == ["QUERY_RESP", "SERVER_EVENT", "QUERY_UPDATE"])
        guard case .queryUpdate(let update) = subscriber.messages.last else { return }
        #expect(update.key == "k" && update.changeType == .enter)
    }

    @Test func topicsPublishToAnySubscriberButThePublisher() async {
        let topics = TopicRegistry()
        let publisher = RecordingSubscriber()
        let reader = RecordingSubscriber()
        #expect(await topics.subscribe("news", tenant: Self.tenant, subscriber: publisher) == .subscribed)
        #expect(await topics.subscribe("news", tenant: Self.tenant, subscriber: reader) == .subscribed)
        #expect(await topics.publish("news", data: "hello", tenant: Self.tenant, publisher: publisher.id, nowMillis: 5) == 1)
        #expect(publisher.messages.isEmpty)
        guard case .topicMessage(let message) = reader.messages.first else {
            Issue.record("no TOPIC_MESSAGE: \(reader.messages)")
            return
        }
        #expect(message.topic == "news" && message.data == "hello")
    }

    @Test func locksGrantWaitersThatAreAnySubscriber() async {
        let locks = LockRegistry()
        let holder = RecordingSubscriber()
        let waiter = RecordingSubscriber()
        await locks.request(LockRequest(requestId: "r1", name: "job", ttl: 60_000), tenant: Self.tenant, subscriber: holder)
        await locks.request(LockRequest(requestId: "r2", name: "job", ttl: 60_000), tenant: Self.tenant, subscriber: waiter)
        #expect(holder.messages.map(\.type) == ["LOCK_GRANTED"])
        #expect(waiter.messages.isEmpty, "queued behind the holder")
        // The holder's session goes: the waiter is granted.
        await locks.removeSession(holder.id)
        #expect(waiter.messages.map(\.type) == ["LOCK_GRANTED"])
    }

    @Test func countersUpdateWatchersThatAreAnySubscriber() async {
        let counters = CounterRegistry()
        let watcher = RecordingSubscriber()
        let writer = RecordingSubscriber()
        _ = await counters.request("likes", tenant: Self.tenant, subscriber: watcher)
        _ = await counters.sync("likes", state: CounterState(positive: ["w": 3]), tenant: Self.tenant, subscriber: writer)
        guard case .counterUpdate(let update) = watcher.messages.last else {
            Issue.record("no COUNTER_UPDATE: \(watcher.messages)")
            return
        }
        #expect(update.name == "likes" && update.state.positive["w"] == 3)
    }

    @Test func journalReadersThatAreAnySubscriberGetEvents() {
        let journal = EventJournal(nodeId: "n1")
        let reader = RecordingSubscriber()
        journal.subscribe(tenant: Self.tenant, subscriptionId: "s", fromSequence: nil, mapName: nil, types: nil, subscriber: reader)
        journal.append(EventJournalTests.drafts(["a"]), mapName: "todos", tenant: Self.tenant)
        guard case .journalEventMessage(let message) = reader.messages.first else {
            Issue.record("no JOURNAL_EVENT: \(reader.messages)")
            return
        }
        #expect(message.event.key == "a" && message.event.sequence == "1")
    }
}
