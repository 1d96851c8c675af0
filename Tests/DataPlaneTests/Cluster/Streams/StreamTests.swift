@testable import DataPlane
import Logging
import NIOCore
import Synchronization
import Tenancy
import Testing
import TopGunCore
import TopGunWire

@Suite struct StreamSequenceTests {
    static func at(_ stream: UInt64, _ generation: UInt64, _ sequence: UInt64) -> StreamSequence.Position {
        .init(stream: stream, generation: generation, sequence: sequence)
    }

    @Test func aStreamThatContinuesIsDeliveredAndAGapIsSeen() {
        var sequence = StreamSequence()
        #expect(sequence.accept(Self.at(7, 0, 1)) == .next)
        #expect(sequence.accept(Self.at(7, 0, 2)) == .next)
        #expect(sequence.accept(Self.at(7, 0, 4)) == .gap)
        #expect(sequence.accept(Self.at(7, 0, 5)) == .next)
        #expect(sequence.accept(Self.at(7, 0, 5)) == .repeated)
        #expect(sequence.accept(Self.at(7, 0, 3)) == .repeated)
        // The sender lost a message and began the next generation.
        #expect(sequence.accept(Self.at(7, 1, 1)) == .gap)
        #expect(sequence.accept(Self.at(7, 1, 2)) == .next)
        #expect(sequence.accept(Self.at(7, 0, 9)) == .repeated)
        // The sender restarted: whatever this node relied on from it is gone.
        #expect(sequence.accept(Self.at(9, 0, 1)) == .gap)
        #expect(sequence.accept(Self.at(9, 0, 2)) == .next)
    }

    @Test func theFirstMessageFromAPeerIsAGapUnlessItOpensItsStream() {
        var fresh = StreamSequence()
        #expect(fresh.accept(Self.at(3, 0, 1)) == .next)
        var late = StreamSequence()
        #expect(late.accept(Self.at(3, 0, 12)) == .gap)
        #expect(late.accept(Self.at(3, 0, 13)) == .next)
        var lostFirst = StreamSequence()
        #expect(lostFirst.accept(Self.at(3, 1, 1)) == .gap)
    }

    /// Seeded senders that lose messages (a failed send starts a new generation, a dropped
    /// connection loses what it carried silently): the receiver sees a gap exactly when a
    /// message was lost since the last one it got, the first one included.
    @Test(arguments: 0..<200) func aGapIsSeenExactlyWhenMessagesWereLost(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var receiver = StreamSequence()
        var generation: UInt64 = 0
        var number: UInt64 = 0
        var lostSinceDelivered = false
        for _ in 0..<300 {
            number += 1
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                // The send failed: lost, and the sender begins a new generation.
                lostSinceDelivered = true
                generation += 1
                number = 0
            case 1:
                // Lost with its connection; the sender does not know.
                lostSinceDelivered = true
            default:
                let verdict = receiver.accept(Self.at(42, generation, number))
                #expect(verdict == (lostSinceDelivered ? .gap : .next), "seed \(seed)")
                lostSinceDelivered = false
            }
        }
    }
}

@Suite struct StreamMessageTests {
    @Test func entriesRoundTrip() throws {
        let message = StreamMessage(position: .init(stream: .max, generation: 3, sequence: 42), entries: [
            .frame(sessions: [1, .max, 77], bytes: [0x81, 0xa1, 0x61, 0x01]),
            .topic(tenant: TenantID("acme"), topic: "chat/room:1", bytes: [9, 8, 7]),
            .sessionsEnded(incarnation: "run-1", sessions: [5, 6]),
        ])
        #expect(try StreamMessage(decoding: message.encoded()) == message)
        #expect(try StreamMessage(decoding: StreamMessage(position: .init(stream: 1, generation: 0, sequence: 1), entries: []).encoded()).entries.isEmpty)
    }

    @Test func anEntryOfAnUnknownKindIsSkipped() throws {
        let body = ClusterCodec.encode([
            "s": .int(1), "g": .int(0), "q": .int(1),
            "e": .array([.array([.int(99), .string("later")]), StreamEntry.sessionsEnded(incarnation: "r", sessions: [1]).wireValue]),
        ])
        #expect(try StreamMessage(decoding: body).entries == [.sessionsEnded(incarnation: "r", sessions: [1])])
    }

    @Test(arguments: [
        DataValue.string("frame"), .array([]), .array([.int(1)]), .array([.int(1), .string("x"), .binary([1])]),
        .array([.int(2), .string("t"), .int(3), .binary([1])]), .array([.int(3), .string("r"), .array([.string("1")])]),
    ])
    func aMalformedEntryIsRefused(entry: DataValue) {
        let body = ClusterCodec.encode(["s": .int(1), "g": .int(0), "q": .int(1), "e": .array([entry])])
        #expect(throws: ClusterMessageError.self) { try StreamMessage(decoding: body) }
    }
}

@Suite struct PeerStreamTests {
    final class Recorder: Sendable {
        let messages = Mutex<[StreamMessage]>([])
        let failNext = Atomic<Int>(0)

        func deliver(_ body: [UInt8]) async throws {
            if failNext.load(ordering: .relaxed) > 0 {
                failNext.subtract(1, ordering: .relaxed)
                throw ClusterMessageError("peer unreachable")
            }
            let message = try StreamMessage(decoding: body)
            messages.withLock { $0.append(message) }
        }

        var entries: [StreamEntry] { messages.withLock { $0.flatMap(\.entries) } }
    }

    static func frame(_ index: Int) -> StreamEntry { .frame(sessions: [UInt64(index)], bytes: [UInt8(index % 256)]) }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }

    @Test func entriesArriveInOrderInNumberedMessages() async throws {
        let recorder = Recorder()
        let stream = PeerStream(node: NodeID("n2"), logger: Logger(label: "test")) { try await recorder.deliver($0) }
        for index in 0..<1_000 { stream.append(Self.frame(index)) }
        try await Self.waitUntil { recorder.entries.count == 1_000 }
        #expect(recorder.entries == (0..<1_000).map(Self.frame))
        var receiver = StreamSequence()
        for message in recorder.messages.withLock({ $0 }) { #expect(receiver.accept(message.position) == .next) }
    }

    @Test func aFailedSendStartsANewStreamWhichTheReceiverSeesAsAGap() async throws {
        let recorder = Recorder()
        let stream = PeerStream(node: NodeID("n2"), logger: Logger(label: "test")) { try await recorder.deliver($0) }
        stream.append(Self.frame(1))
        try await Self.waitUntil { recorder.entries.count == 1 }
        recorder.failNext.store(1, ordering: .relaxed)
        stream.append(Self.frame(2))
        try await Self.waitUntil { recorder.failNext.load(ordering: .relaxed) == 0 }
        stream.append(Self.frame(3))
        try await Self.waitUntil { recorder.entries.count == 2 }
        let messages = recorder.messages.withLock { $0 }
        var receiver = StreamSequence()
        #expect(receiver.accept(messages[0].position) == .next)
        #expect(receiver.accept(messages[1].position) == .gap)
        #expect(recorder.entries == [Self.frame(1), Self.frame(3)])
    }

    @Test func aQueueThatOutgrowsItsBoundIsDroppedAndSeenAsAGap() async throws {
        let recorder = Recorder()
        let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let opened = Atomic<Bool>(false)
        let stream = PeerStream(node: NodeID("n2"), maxQueuedBytes: 1_000, logger: Logger(label: "test")) { body in
            // The first send waits: everything appended meanwhile queues up.
            if !opened.exchange(true, ordering: .relaxed) {
                await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } }
            }
            try await recorder.deliver(body)
        }
        stream.append(.frame(sessions: [0], bytes: [0]))
        try await Self.waitUntil { gate.withLock { $0 != nil } }
        for index in 1...100 { stream.append(.frame(sessions: [UInt64(index)], bytes: [UInt8](repeating: 1, count: 50))) }
        #expect(stream.overflows > 0)
        gate.withLock { $0 }?.resume()
        try await Self.waitUntil { recorder.entries.last == .frame(sessions: [100], bytes: [UInt8](repeating: 1, count: 50)) }
        let messages = recorder.messages.withLock { $0 }
        var receiver = StreamSequence()
        let verdicts = messages.map { receiver.accept($0.position) }
        #expect(verdicts.first == .next)
        #expect(verdicts.dropFirst().first == .gap)
        #expect(recorder.entries.count < 101)
    }

    @Test func aTickAfterABurstSendsAnEmptyMessageAndAnIdleStreamSendsNothing() async throws {
        let recorder = Recorder()
        let stream = PeerStream(node: NodeID("n2"), logger: Logger(label: "test")) { try await recorder.deliver($0) }
        stream.tick()
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.messages.withLock { $0.count } == 0)
        stream.append(Self.frame(1))
        try await Self.waitUntil { recorder.messages.withLock { $0.count } == 1 }
        stream.tick()
        try await Self.waitUntil { recorder.messages.withLock { $0.count } == 2 }
        #expect(recorder.messages.withLock { $0[1] }.entries.isEmpty)
        #expect(recorder.messages.withLock { $0[1] }.position.sequence == 2)
        stream.tick()
        try await Task.sleep(for: .milliseconds(50))
        #expect(recorder.messages.withLock { $0.count } == 2)
    }

    @Test func aFanOutSendsOneEntryPerPeerForAFrameMeantForManyOfItsSessions() async throws {
        let (toN2, toN3) = (Recorder(), Recorder())
        let n2 = PeerStream(node: NodeID("n2"), logger: Logger(label: "test")) { try await toN2.deliver($0) }
        let n3 = PeerStream(node: NodeID("n3"), logger: Logger(label: "test")) { try await toN3.deliver($0) }
        let run2 = RemoteSessions.Run(node: NodeID("n2"), incarnation: "a")
        let run3 = RemoteSessions.Run(node: NodeID("n3"), incarnation: "b")
        let on2 = (1...3).map { RemoteSubscriber(run: run2, remoteSession: UInt64($0), stream: n2) }
        let on3 = (4...5).map { RemoteSubscriber(run: run3, remoteSession: UInt64($0), stream: n3) }
        let shared = ByteBuffer(bytes: [1, 2, 3])
        var batch = FanOutBatch()
        // Interleaved as a map's watchers are: grouped per peer, in each peer's order.
        for (index, subscriber) in [on2[0], on3[0], on2[1], on3[1], on2[2]].enumerated() {
            subscriber.send(frame: shared, in: &batch)
            if index == 1 { on2[0].send(frame: ByteBuffer(bytes: [9]), in: &batch) }
        }
        // Equal bytes in another buffer group too.
        on3[1].send(frame: ByteBuffer(bytes: [1, 2, 3]), in: &batch)
        #expect(toN2.entries.isEmpty)
        batch.flush()
        try await Self.waitUntil { toN2.entries.count == 3 && toN3.entries.count == 1 }
        #expect(toN2.entries == [
            .frame(sessions: [1], bytes: [1, 2, 3]), .frame(sessions: [1], bytes: [9]), .frame(sessions: [2, 3], bytes: [1, 2, 3]),
        ])
        #expect(toN3.entries == [.frame(sessions: [4, 5, 5], bytes: [1, 2, 3])])
    }
}
