import NIOCore
import NIOPosix
import Testing

@testable import DataPlane

/// The per-connection write queue: its byte bound, the order of waiters, the wait's bound.
@Suite struct ClusterOutboxTests {
    static func outbox(limit: Int) -> ClusterOutbox {
        ClusterOutbox(limit: limit, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    }

    static func frame(_ size: Int, tag: UInt8 = 0) -> ByteBuffer {
        ByteBuffer(bytes: [UInt8](repeating: tag, count: size))
    }

    static func tags(_ batch: [ByteBuffer]?) -> [UInt8] {
        (batch ?? []).compactMap { $0.readableBytesView.first }
    }

    @Test func framesQueuedTogetherDrainAsOneBatch() async throws {
        let outbox = Self.outbox(limit: 100)
        for tag in UInt8(1)...3 {
            try await outbox.enqueue(Self.frame(10, tag: tag), maxWait: .zero)
        }
        #expect(outbox.queuedBytes == 30)
        let batch = await outbox.nextBatch()
        #expect(Self.tags(batch) == [1, 2, 3])
        // Taken is not written: the bytes count until the channel has them.
        #expect(outbox.queuedBytes == 30)
        outbox.written(30)
        #expect(outbox.queuedBytes == 0)
    }

    @Test func fullQueueRefusesWithoutAWait() async throws {
        let outbox = Self.outbox(limit: 25)
        try await outbox.enqueue(Self.frame(10), maxWait: .zero)
        try await outbox.enqueue(Self.frame(10), maxWait: .zero)
        await #expect(throws: ClusterOutbox.Refusal.full) {
            try await outbox.enqueue(Self.frame(10), maxWait: .zero)
        }
        #expect(outbox.queuedBytes == 20)
    }

    @Test func frameLargerThanTheLimitGoesWhenTheQueueIsEmpty() async throws {
        let outbox = Self.outbox(limit: 10)
        try await outbox.enqueue(Self.frame(50), maxWait: .zero)
        #expect(outbox.queuedBytes == 50)
    }

    @Test func waitingFrameIsRefusedWhenItsWaitRunsOut() async throws {
        let outbox = Self.outbox(limit: 10)
        try await outbox.enqueue(Self.frame(10), maxWait: .zero)
        await #expect(throws: ClusterOutbox.Refusal.full) {
            try await outbox.enqueue(Self.frame(5), maxWait: .milliseconds(50))
        }
        #expect(outbox.queuedBytes == 10)
    }

    @Test func roomAdmitsWaitingFramesInOrder() async throws {
        let outbox = Self.outbox(limit: 10)
        try await outbox.enqueue(Self.frame(8, tag: 1), maxWait: .zero)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await outbox.enqueue(Self.frame(6, tag: 2), maxWait: .seconds(60)) }
            try await Self.waitUntil { outbox.waitingFrames == 1 }
            // This one would fit (8 + 2 <= 10), but must not overtake the frame waiting before it.
            group.addTask { try await outbox.enqueue(Self.frame(2, tag: 3), maxWait: .seconds(60)) }
            try await Self.waitUntil { outbox.waitingFrames == 2 }
            #expect(Self.tags(await outbox.nextBatch()) == [1])
            outbox.written(8)
            try await group.waitForAll()
        }
        #expect(outbox.waitingFrames == 0)
        #expect(Self.tags(await outbox.nextBatch()) == [2, 3])
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func closeRefusesWaitersAndEndsTheDrain() async throws {
        let outbox = Self.outbox(limit: 10)
        try await outbox.enqueue(Self.frame(10), maxWait: .zero)
        let waiter = Task { try await outbox.enqueue(Self.frame(10), maxWait: nil) }
        try await Self.waitUntil { outbox.waitingFrames == 1 }
        outbox.close()
        await #expect(throws: ClusterOutbox.Refusal.closed) { try await waiter.value }
        #expect(await outbox.nextBatch() == nil)
        await #expect(throws: ClusterOutbox.Refusal.closed) {
            try await outbox.enqueue(Self.frame(1), maxWait: nil)
        }
    }

    @Test func cancelledWaiterLeavesTheQueue() async throws {
        let outbox = Self.outbox(limit: 10)
        try await outbox.enqueue(Self.frame(10, tag: 1), maxWait: .zero)
        let waiter = Task { try await outbox.enqueue(Self.frame(10, tag: 2), maxWait: nil) }
        try await Self.waitUntil { outbox.waitingFrames == 1 }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(outbox.waitingFrames == 0)
        #expect(Self.tags(await outbox.nextBatch()) == [1])
        outbox.written(10)
        try await outbox.enqueue(Self.frame(1, tag: 3), maxWait: .zero)
        #expect(Self.tags(await outbox.nextBatch()) == [3])
    }

    @Test func cancelledDrainEnds() async {
        let outbox = Self.outbox(limit: 10)
        let drain = Task { await outbox.nextBatch() }
        drain.cancel()
        #expect(await drain.value == nil)
    }
}

/// The handler slots of an inbound connection.
@Suite struct ClusterRequestSlotsTests {
    @Test func slotsAreHandedOutUpToTheBound() async throws {
        let slots = ClusterRequestSlots(2)
        try await slots.acquire()
        try await slots.acquire()
        let third = Task { try await slots.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        slots.release()
        try await third.value
    }

    @Test func closingWakesTheWaitingReader() async throws {
        let slots = ClusterRequestSlots(1)
        try await slots.acquire()
        let waiting = Task { try await slots.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        slots.close()
        await #expect(throws: ClusterRequestSlots.Closed.self) { try await waiting.value }
        await #expect(throws: ClusterRequestSlots.Closed.self) { try await slots.acquire() }
    }

    @Test func cancellingTheWaitingReaderEndsItsWait() async throws {
        let slots = ClusterRequestSlots(1)
        try await slots.acquire()
        let waiting = Task { try await slots.acquire() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
    }
}
