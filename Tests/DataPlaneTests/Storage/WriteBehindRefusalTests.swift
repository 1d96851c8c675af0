@testable import DataPlane
import Testing
import TopGunCore

extension StorageTests {
    /// A flush the storage committed except for partitions another node owns now
    /// (`flushCommitted(_:refusing:now:)`): those are fenced and their rows handed back.
    @Suite("WriteBehindRefusal")
    struct WriteBehindRefusalTests {
        typealias Machine = WriteBehindStateMachine<ContinuousClock.Instant>
        let t0 = ContinuousClock.now

        func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0.advanced(by: .milliseconds(milliseconds)) }

        func machine(maxBatch: Int = 100, maxPending: Int = 1_000, concurrentFlushes: Int = 1) -> Machine {
            Machine(configuration: WriteBehindConfiguration(
                maxBatch: maxBatch, flushInterval: .milliseconds(5), maxPending: maxPending,
                maxConcurrentFlushes: concurrentFlushes, initialBackoff: .milliseconds(10), maxBackoff: .seconds(1)))
        }

        /// Partitions of the tests (the machine goes by a row's partition, not its key's hash).
        static let a = 10, b = 20, c = 30

        func row(_ key: String, _ version: Int64, in partition: Int) -> StoredRecord {
            StoredRecord(key: StorageFixtures.key(key), partition: partition,
                         value: .lww(LWWRecord(value: .int(version), timestamp: StorageFixtures.timestamp(version))))
        }

        func enqueue(_ m: inout Machine, _ records: [StoredRecord], at now: ContinuousClock.Instant) -> FlushTicket {
            guard case .admitted(let ticket, _) = m.enqueue(records, id: 0, now: now) else {
                Issue.record("enqueue was suspended")
                return FlushTicket(sequence: 0)
            }
            return ticket
        }

        func flight(_ m: inout Machine, at now: ContinuousClock.Instant) -> (id: UInt64, rows: [StoredRecord])? {
            guard case .flush(let id, let rows) = m.tick(now: now).1 else { return nil }
            return (id, rows)
        }

        static func sorted(_ rows: [StoredRecord]) -> [StoredRecord] {
            rows.sorted { ($0.key.key, $0.sequence, "\($0.value)") < ($1.key.key, $1.sequence, "\($1.value)") }
        }

        @Test func refusedPartitionsAreFencedAndTheirRowsHandedBack() {
            var m = machine()
            let onA = enqueue(&m, [row("a1", 1, in: Self.a)], at: t0)
            let onB = enqueue(&m, [row("b1", 1, in: Self.b)], at: t0)
            let onBoth = enqueue(&m, [row("a2", 1, in: Self.a), row("b2", 1, in: Self.b)], at: t0)
            guard let flush = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            #expect(flush.rows.count == 4)
            // Meanwhile: a newer state of a row in flight, and rows of a and c.
            let queuedOnA = enqueue(&m, [row("a1", 2, in: Self.a), row("a3", 1, in: Self.a)], at: at(6))
            let queuedOnC = enqueue(&m, [row("c1", 1, in: Self.c)], at: at(6))
            for (id, ticket) in [(1, onA), (2, onB), (3, onBoth), (4, queuedOnA), (5, queuedOnC)] as [(UInt64, FlushTicket)] {
                #expect(m.waitUntilDurable(ticket, id: id, deadline: at(60_000), now: at(6)) != .resolved(true))
            }
            #expect(m.drain(partition: Self.a, id: 6, deadline: at(60_000), now: at(6)) == nil)
            #expect(m.drain(partition: Self.b, id: 7, deadline: at(60_000), now: at(6)) == nil)

            let (resumptions, displaced) = m.flushCommitted(flush.id, refusing: PartitionSet([Self.a]), now: at(7))

            #expect(Self.sorted(displaced) == Self.sorted([
                row("a1", 1, in: Self.a), row("a2", 1, in: Self.a), row("a1", 2, in: Self.a), row("a3", 1, in: Self.a),
            ]), "a's rows of the flight and those still queued")
            let durable = Dictionary(uniqueKeysWithValues: resumptions.durable.map { ($0.0, $0.1) })
            #expect(durable == [1: false, 2: true, 3: false, 4: false], "c's row is not written yet")
            let drained = Dictionary(uniqueKeysWithValues: resumptions.drained.map { ($0.0, $0.1) })
            #expect(drained == [6: false, 7: true])
            #expect(m.isDurable(onA) == false)
            #expect(m.isDurable(onB) == true)
            #expect(m.isDurable(onBoth) == false, "one of its rows will never be written here")
            #expect(m.isDurable(queuedOnA) == false)
            #expect(m.isDurable(queuedOnC) == nil)
            let status = m.status
            #expect(status.fencedPartitions == PartitionSet([Self.a]))
            #expect(status.isHealthy && status.consecutiveFailures == 0)
            #expect(status.pendingCount == 1, "only c's row is left")
            #expect(m.unwrittenCount(inPartition: Self.a) == 0)
            // Only c's row is flushed next; then its waiter hears true.
            guard let next = flight(&m, at: at(12)) else { Issue.record("no next flush"); return }
            #expect(next.rows == [row("c1", 1, in: Self.c)])
            #expect(m.flushSucceeded(next.id, now: at(13)).durable.map(\.0) == [5])
            // Later writes of the fenced partition are not queued; their waiters hear false.
            let late = enqueue(&m, [row("a4", 1, in: Self.a)], at: at(14))
            #expect(m.waitUntilDurable(late, id: 8, deadline: at(60_000), now: at(14)) == .resolved(false))
            #expect(m.status.pendingCount == 0)
        }

        @Test func withNothingRefusedItIsACommit() {
            var m = machine()
            let ticket = enqueue(&m, [row("a1", 1, in: Self.a)], at: t0)
            guard let flush = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = m.waitUntilDurable(ticket, id: 1, deadline: at(60_000), now: at(5))
            let (resumptions, displaced) = m.flushCommitted(flush.id, refusing: PartitionSet(), now: at(6))
            #expect(displaced.isEmpty)
            #expect(resumptions.durable.map(\.0) == [1] && resumptions.durable.map(\.1) == [true])
            #expect(m.status.fencedPartitions.isEmpty)
        }

        @Test func aRefusalEndsTheBackoffOfEarlierFailures() {
            var m = machine()
            let onB = enqueue(&m, [row("a1", 1, in: Self.a), row("b1", 1, in: Self.b)], at: t0)
            _ = flight(&m, at: at(5))
            _ = m.failOnly("down", now: at(6))
            #expect(!m.status.isHealthy)
            guard let retry = flight(&m, at: at(16)) else { Issue.record("no retry"); return }
            let (_, displaced) = m.flushCommitted(retry.id, refusing: PartitionSet([Self.a]), now: at(17))
            #expect(displaced == [row("a1", 1, in: Self.a)])
            #expect(m.status.isHealthy)
            #expect(m.status.lastError == nil)
            #expect(m.isDurable(onB) == false, "its row of a was refused")
            // Nothing waits for a backoff now.
            let next = enqueue(&m, [row("b2", 1, in: Self.b)], at: at(18))
            guard let flush = flight(&m, at: at(23)) else { Issue.record("no flush after the refusal"); return }
            _ = m.flushSucceeded(flush.id, now: at(24))
            #expect(m.isDurable(next) == true)
        }

        @Test func rowsBlockedForRoomAreHandedBackAndTheirCallerAdmittedAsLost() {
            var m = machine(maxPending: 2)
            _ = enqueue(&m, [row("a1", 1, in: Self.a), row("b1", 1, in: Self.b)], at: t0)
            guard let flush = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            #expect(m.enqueue([row("a2", 1, in: Self.a), row("c1", 1, in: Self.c)], id: 9, now: at(6)) == .suspend)
            let (resumptions, displaced) = m.flushCommitted(flush.id, refusing: PartitionSet([Self.a]), now: at(7))
            #expect(Self.sorted(displaced) == Self.sorted([row("a1", 1, in: Self.a), row("a2", 1, in: Self.a)]))
            guard let admitted = resumptions.admitted.first(where: { $0.0 == 9 })?.1 else { Issue.record("not admitted"); return }
            #expect(m.isDurable(admitted) == false, "its row of a was handed back, never to be written here")
            guard let next = flight(&m, at: at(12)) else { Issue.record("no flush"); return }
            #expect(next.rows == [row("c1", 1, in: Self.c)])
        }

        /// Two flights carry rows of the partition: the first refused hands back its rows, the
        /// second (refused too when it lands) hands back its own, and no row twice.
        @Test func aSecondFlightOfARefusedPartitionHandsBackItsRowsWhenItLands() {
            var m = machine(concurrentFlushes: 2)
            _ = enqueue(&m, [row("a1", 1, in: Self.a)], at: t0)
            guard let first = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            let second = enqueue(&m, [row("a2", 1, in: Self.a), row("b1", 1, in: Self.b)], at: at(6))
            guard let other = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            let (_, displacedFirst) = m.flushCommitted(first.id, refusing: PartitionSet([Self.a]), now: at(12))
            #expect(displacedFirst == [row("a1", 1, in: Self.a)])
            #expect(m.isDurable(second) == false)
            let (resumptions, displacedSecond) = m.flushCommitted(other.id, refusing: PartitionSet([Self.a]), now: at(13))
            #expect(displacedSecond == [row("a2", 1, in: Self.a)])
            #expect(resumptions.durable.isEmpty)
            #expect(m.status.pendingCount == 0)
            #expect(m.flushesInFlight.isEmpty)
        }

        /// The second flight fails instead: its row of the refused partition is kept for the
        /// fence's caller, not retried.
        @Test func aSecondFlightThatFailsLeavesItsRowsOfTheRefusedPartitionToTheFence() {
            var m = machine(concurrentFlushes: 2)
            _ = enqueue(&m, [row("a1", 1, in: Self.a)], at: t0)
            guard let first = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = enqueue(&m, [row("a2", 1, in: Self.a), row("b1", 1, in: Self.b)], at: at(6))
            guard let other = flight(&m, at: at(11)) else { Issue.record("no second flush"); return }
            _ = m.flushCommitted(first.id, refusing: PartitionSet([Self.a]), now: at(12))
            _ = m.flushFailed(other.id, reason: "down", now: at(13))
            #expect(m.takeFencedLeftovers(Self.a) == [row("a2", 1, in: Self.a)])
            guard let retry = flight(&m, at: at(30)) else { Issue.record("no retry"); return }
            #expect(retry.rows == [row("b1", 1, in: Self.b)])
        }

        @Test func aRefusedFlightOfATenantPurgedMeanwhileHandsNothingBack() {
            var m = machine()
            _ = enqueue(&m, [row("a1", 1, in: Self.a)], at: t0)
            guard let flush = flight(&m, at: at(5)) else { Issue.record("no flush"); return }
            _ = m.purgeTenant(StorageFixtures.tenantA, now: at(6))
            let (_, displaced) = m.flushCommitted(flush.id, refusing: PartitionSet([Self.a]), now: at(7))
            #expect(displaced.isEmpty)
        }

        /// Random writes over three partitions, flushes that commit, fail, or are refused for
        /// partitions another node has taken over (for good): every refused partition is
        /// fenced; no flight started after a partition was fenced carries its rows; for every
        /// row of a taken-over partition, its latest state enqueued before the refusal is in
        /// the database or handed back; no ticket touching a refused partition is answered
        /// true unless its rows there were committed; and every durable ticket's rows are
        /// stored.
        @Test(arguments: 0..<40)
        func refusedRowsAreHandedBackAndNeverAcknowledged(seed: UInt64) {
            var random = SplitMix64(seed: seed)
            var m = machine(maxBatch: 1 + Int(random.next() % 6), maxPending: 6 + Int(random.next() % 10),
                            concurrentFlushes: 1 + Int(random.next() % 3))
            let partitions = [Self.a, Self.b, Self.c]
            let keys = (0..<6).map { ("k\($0)", partitions[$0 % 3]) }
            var now = t0
            var version: Int64 = 0
            var database: [String: Int64] = [:]
            var handedBack: [String: Int64] = [:]
            /// Partitions another node took over; the storage refuses them from then on.
            var takenOver = Set<Int>()
            /// Per key, the latest version enqueued before its partition was fenced.
            var latestBeforeFence: [String: Int64] = [:]
            var flights: [UInt64: [StoredRecord]] = [:]
            var enqueued: [(ticket: FlushTicket, rows: [String: Int64])] = []
            var blocked: [UInt64: [String: Int64]] = [:]
            var nextID: UInt64 = 1

            func value(_ record: StoredRecord) -> Int64 {
                guard case .lww(let lww) = record.value, case .int(let v)? = lww.value else { return -1 }
                return v
            }

            func admit(_ resumed: Machine.Resumptions) {
                for (id, ticket) in resumed.admitted { enqueued.append((ticket, blocked.removeValue(forKey: id)!)) }
            }

            func handBack(_ rows: [StoredRecord]) {
                for row in rows {
                    #expect(takenOver.contains(row.partition), "seed \(seed): a row of partition \(row.partition) handed back")
                    handedBack[row.key.key] = max(handedBack[row.key.key] ?? -1, value(row))
                }
            }

            for _ in 0..<500 {
                switch random.next() % 8 {
                case 0, 1, 2:
                    var rows: [String: Int64] = [:]
                    var records: [StoredRecord] = []
                    for _ in 0..<(1 + random.next() % 3) {
                        version += 1
                        let (key, partition) = keys[Int(random.next() % 6)]
                        rows[key] = version
                        records.removeAll { $0.key.key == key }
                        records.append(row(key, version, in: partition))
                    }
                    for record in records where !m.status.fencedPartitions.contains(record.partition) {
                        latestBeforeFence[record.key.key] = value(record)
                    }
                    let id = nextID
                    nextID += 1
                    switch m.enqueue(records, id: id, now: now) {
                    case .admitted(let ticket, _): enqueued.append((ticket, rows))
                    case .suspend: blocked[id] = rows
                    }
                case 3:
                    now = now.advanced(by: .milliseconds(Int64(random.next() % 20)))
                case 4:
                    // Another node takes a partition over (the storage refuses it from now on).
                    takenOver.insert(partitions[Int(random.next() % 3)])
                default:
                    guard !flights.isEmpty else { break }
                    let id = flights.keys.sorted()[Int(random.next() % UInt64(flights.count))]
                    let rows = flights.removeValue(forKey: id)!
                    if random.next() % 4 == 0 {
                        admit(m.flushFailed(id, reason: "random failure", now: now))
                        break
                    }
                    let refused = PartitionSet(rows.map(\.partition).filter(takenOver.contains))
                    for record in rows where !refused.contains(record.partition) {
                        #expect(value(record) >= (database[record.key.key] ?? -1), "seed \(seed): an older state overwrote a newer one")
                        database[record.key.key] = value(record)
                    }
                    let (resumptions, displaced) = m.flushCommitted(id, refusing: refused, now: now)
                    admit(resumptions)
                    handBack(displaced)
                    for partition in refused {
                        #expect(m.status.fencedPartitions.contains(partition), "seed \(seed): refused \(partition) not fenced")
                    }
                }
                while case .flush(let id, let rows) = m.tick(now: now).1 {
                    for record in rows where m.status.fencedPartitions.contains(record.partition) {
                        Issue.record("seed \(seed): a flight started after partition \(record.partition) was fenced carries \(record.key.key)")
                    }
                    flights[id] = rows
                }
            }
            // Everything lands.
            var rounds = 0
            while !flights.isEmpty || (m.status.pendingCount > 0 && rounds < 5_000) {
                rounds += 1
                now = now.advanced(by: .milliseconds(50))
                for id in flights.keys.sorted() {
                    let rows = flights.removeValue(forKey: id)!
                    let refused = PartitionSet(rows.map(\.partition).filter(takenOver.contains))
                    for record in rows where !refused.contains(record.partition) { database[record.key.key] = value(record) }
                    let (resumptions, displaced) = m.flushCommitted(id, refusing: refused, now: now)
                    admit(resumptions)
                    handBack(displaced)
                }
                while case .flush(let id, let rows) = m.tick(now: now).1 { flights[id] = rows }
            }
            for partition in takenOver where m.status.fencedPartitions.contains(partition) {
                handBack(m.takeFencedLeftovers(partition))
            }
            #expect(m.status.pendingCount == 0, "seed \(seed)")
            // Nothing of a taken-over, fenced partition is lost: the database or the new owner has it.
            for (key, partition) in keys where m.status.fencedPartitions.contains(partition) {
                guard let latest = latestBeforeFence[key] else { continue }
                let kept = max(database[key] ?? -1, handedBack[key] ?? -1)
                #expect(kept >= latest, "seed \(seed): \(key)@\(latest) neither stored nor handed back (stored \(database[key] ?? -1), handed back \(handedBack[key] ?? -1))")
            }
            for (ticket, rows) in enqueued {
                guard let answer = m.isDurable(ticket) else {
                    Issue.record("seed \(seed): ticket \(ticket.sequence) unanswered")
                    continue
                }
                guard answer else { continue }
                for (key, version) in rows where (database[key] ?? -1) < version {
                    Issue.record("seed \(seed): ticket \(ticket.sequence) durable but \(key)@\(version) not stored")
                }
            }
            #expect(blocked.isEmpty, "seed \(seed): callers still blocked")
        }
    }
}
