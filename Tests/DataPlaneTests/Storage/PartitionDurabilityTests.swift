@testable import DataPlane
import Testing
import TopGunCore

extension StorageTests {
    /// One partition's pending writes flushed, drained and fenced on their own, through the
    /// write-behind actor and real storages: what moving a partition to another node needs.
    @Suite("Partition durability")
    struct PartitionDurabilityTests {
        /// Nothing flushes on its own for a minute: only drains do.
        static let idle = WriteBehindConfiguration(
            maxBatch: 100_000, flushInterval: .seconds(60), maxPending: 100_000, initialBackoff: .milliseconds(5), maxBackoff: .milliseconds(50))

        static func keys(inDistinctPartitions count: Int, prefix: String) -> [(key: String, partition: Int)] {
            var seen = Set<Int>()
            var keys: [(String, Int)] = []
            var index = 0
            while keys.count < count {
                let key = "\(prefix)\(index)"
                let partition = StorageFixtures.lww(key, .int(0)).partition
                if seen.insert(partition).inserted { keys.append((key, partition)) }
                index += 1
            }
            return keys
        }

        @Test(arguments: StorageBackend.all)
        func drainingAPartitionWritesItsRowsAndReleasesItsAcks(_ backend: StorageBackend) async throws {
            try await backend.withStorage { storage, _ in
                let queue = WriteBehindQueue(storage: storage, configuration: Self.idle, logger: quietLogger)
                let runner = Task { await queue.run() }
                defer { runner.cancel() }
                let keys = Self.keys(inDistinctPartitions: 2, prefix: "k")
                let moving = StorageFixtures.lww(keys[0].key, .string("moving"))
                let staying = StorageFixtures.lww(keys[1].key, .string("staying"))
                let movingTicket = await queue.enqueue([moving])
                _ = await queue.enqueue([staying])
                let acked = Task { await queue.waitUntilDurable(movingTicket, timeout: .seconds(30)) }
                #expect(await queue.unwrittenCount(inPartition: keys[0].partition) == 1)
                // Without the drain, nothing would flush for a minute.
                #expect(await queue.drain(partition: keys[0].partition, timeout: .seconds(20)))
                #expect(await acked.value)
                #expect(await queue.unwrittenCount(inPartition: keys[0].partition) == 0)
                let stored = try await storage.loadPartition(keys[0].partition)
                #expect(stored.map(\.key) == [moving.key])
                #expect(stored.first?.value == moving.value)
                // A partition with nothing pending drains at once.
                #expect(await queue.drain(partition: (keys[0].partition + 1) % 271, timeout: .zero))
            }
        }

        @Test func fencingAPartitionReleasesItsAcksAtOnceAndHandsBackRowsThatDidNotLand() async throws {
            let storage = FaultInjectingStorage()
            let queue = WriteBehindQueue(storage: storage, configuration: WriteBehindQueueTests.configuration(), logger: quietLogger)
            let runner = Task { await queue.run() }
            defer { runner.cancel() }
            let keys = Self.keys(inDistinctPartitions: 2, prefix: "f")
            let (fencedKey, fencedPartition) = keys[0]
            await storage.set(.hanging)
            let lost = StorageFixtures.lww(fencedKey, .string("lost"))
            let lostTicket = await queue.enqueue([lost])
            let lostAck = Task { await queue.waitUntilDurable(lostTicket, timeout: .seconds(60)) }
            // The flush carrying it is under way and hangs.
            while await storage.storeCalls == 0 { try await Task.sleep(for: .milliseconds(2)) }
            let other = StorageFixtures.lww(keys[1].key, .string("kept"))
            let otherTicket = await queue.enqueue([other])
            let fence = Task { await queue.fence(partition: fencedPartition) }
            // The ack is released before the hung flush lands: it will not be written here.
            #expect(await lostAck.value == false)
            #expect(await queue.status.fencedPartitions == PartitionSet([fencedPartition]))
            // Later writes of the partition are not queued.
            let late = await queue.enqueue([StorageFixtures.lww(fencedKey, .string("late"))])
            #expect(await queue.waitUntilDurable(late, timeout: .seconds(5)) == false)
            // The hung flush fails; its row of the fenced partition comes back to the caller.
            await storage.set(.healthy)
            let handedBack = await fence.value
            #expect(handedBack.map(\.key) == [lost.key])
            #expect(await queue.waitUntilDurable(otherTicket, timeout: .seconds(20)))
            #expect(try await storage.loadPartition(fencedPartition).isEmpty, "nothing of the fenced partition was written")
            #expect(try await storage.loadPartition(keys[1].partition).map(\.key) == [other.key])
            // Owned again: written again.
            await queue.unfence(partition: fencedPartition)
            let again = await queue.enqueue([StorageFixtures.lww(fencedKey, .string("again"))])
            #expect(await queue.waitUntilDurable(again, timeout: .seconds(20)))
            #expect(try await storage.loadPartition(fencedPartition).count == 1)
        }
    }
}
