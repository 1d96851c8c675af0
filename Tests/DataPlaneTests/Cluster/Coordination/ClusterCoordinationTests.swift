@testable import DataPlane
import Foundation
import Logging
import Synchronization
import Tenancy
import Testing
import TopGunCore
import TopGunWire

@Suite struct RemoteSessionsTests {
    typealias F = MembershipFixtures
    static let run = RemoteSessions.Run(node: NodeID("n2"), incarnation: "n2-run")

    static func sessions() -> RemoteSessions {
        RemoteSessions { node in PeerStream(node: node, logger: Logger(label: "test")) { _ in } }
    }

    @Test func aSessionIsTheSameSubscriberUntilItEnds() throws {
        let sessions = Self.sessions()
        let first = try #require(sessions.subscriber(Self.run, session: 5))
        #expect(sessions.subscriber(Self.run, session: 5) === first)
        let other = try #require(sessions.subscriber(RemoteSessions.Run(node: NodeID("n3"), incarnation: "n3-run"), session: 5))
        #expect(other.id != first.id)
        #expect(sessions.ended(Self.run, sessions: [5]) == [first.id])
        #expect(sessions.count == 1)
    }

    @Test func aRequestThatArrivesAfterItsSessionsEndIsRefused() {
        let sessions = Self.sessions()
        #expect(sessions.ended(Self.run, sessions: [8]).isEmpty)
        #expect(sessions.subscriber(Self.run, session: 8) == nil)
        #expect(sessions.subscriber(Self.run, session: 9) != nil)
    }

    @Test func keepOnlyReleasesTheSessionsTheirNodeNoLongerHas() throws {
        let sessions = Self.sessions()
        let kept = try #require(sessions.subscriber(Self.run, session: 1))
        let gone = try #require(sessions.subscriber(Self.run, session: 2))
        #expect(sessions.sessions(of: NodeID("n2"))[Self.run].map(Set.init) == [1, 2])
        #expect(sessions.keepOnly(Self.run, alive: [1]) == [gone.id])
        #expect(sessions.subscriber(Self.run, session: 1) === kept)
    }

    @Test func aSweepReleasesRunsWhoseLeaseIsGoneOrReplaced() throws {
        let sessions = Self.sessions()
        let a = try #require(sessions.subscriber(Self.run, session: 1))
        // Not in the leases read yet: it may have joined since they were read.
        #expect(sessions.sweep(F.view([F.lease("n1")])).isEmpty)
        #expect(sessions.sweep(F.view([F.lease("n1"), F.lease("n2")])).isEmpty)
        // Seen live once, then its lease expired.
        #expect(sessions.sweep(F.view([F.lease("n1"), F.lease("n2", live: false)])) == [a.id])
        #expect(sessions.count == 0)

        let b = try #require(sessions.subscriber(Self.run, session: 2))
        var restarted = F.lease("n2")
        restarted.lease.incarnation = "n2-second-run"
        #expect(sessions.sweep(F.view([restarted])) == [b.id])

        let c = try #require(sessions.subscriber(Self.run, session: 3))
        #expect(sessions.sweep(F.view([]), now: .now + RemoteSessions.unseenGrace + .seconds(1)) == [c.id])
    }
}

@Suite struct CounterWatchesTests {
    static let acme = TenantID("acme")

    @Test func watchesRegisteredOnAnotherNodeThanTheOwnerAreMisplaced() {
        var watches = CounterWatches()
        let hits = TenantScopedName(tenant: Self.acme, name: "hits")
        let likes = TenantScopedName(tenant: Self.acme, name: "likes")
        watches.record(hits, session: SessionID(rawValue: 1), on: NodeID("n1"))
        watches.record(hits, session: SessionID(rawValue: 2), on: NodeID("n2"))
        watches.record(likes, session: SessionID(rawValue: 1), on: NodeID("n3"))
        let misplaced = watches.misplaced { $0 == hits ? NodeID("n2") : NodeID("n3") }
        #expect(misplaced == [.init(counter: hits, session: SessionID(rawValue: 1), registeredOn: NodeID("n1"), owner: NodeID("n2"))])
        watches.record(hits, session: SessionID(rawValue: 1), on: NodeID("n2"))
        #expect(watches.misplaced { $0 == hits ? NodeID("n2") : NodeID("n3") }.isEmpty)
        watches.remove(SessionID(rawValue: 1))
        #expect(watches.count == 1)
        #expect(watches.misplaced { _ in NodeID("n9") }.map(\.session) == [SessionID(rawValue: 2)])
    }
}

@Suite struct LockFencingAcrossOwnersTests {
    static let lock = LockTable.LockName(tenant: TenantID("acme"), name: "orders")

    static func owner(_ session: UInt64) -> LockTable.Owner { .init(session: SessionID(rawValue: session), requestId: "r\(session)") }

    @Test func aSingleNodesTokensStartAtOne() {
        var table = LockTable()
        let floor = LockTable.fencingFloor(epoch: 1)
        #expect(table.request(Self.lock, owner: Self.owner(1), ttlMillis: nil, nowMillis: 0, fencingFloor: floor)
            == [.granted(Self.lock, Self.owner(1), fencingToken: 1)])
    }

    /// A new owner under a later epoch has none of the old owner's state (it died), yet its
    /// tokens exceed every token granted before.
    @Test(arguments: 0..<50) func tokensKeepIncreasingAcrossOwnersThatLoseTheirState(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var epoch: Int64 = 1
        var table = LockTable()
        var last: Int64 = 0
        var now: Int64 = 0
        for step in 0..<400 {
            now += 100
            switch Int.random(in: 0..<10, using: &random) {
            case 0:
                // Failover or a move: the partition's state is gone, the epoch grows.
                epoch += Int64.random(in: 1...3, using: &random)
                table = LockTable()
            case 1:
                table.dropLocks { _ in true }
                epoch += 1
            case 2...5:
                let actions = table.request(
                    Self.lock, owner: Self.owner(UInt64.random(in: 1...4, using: &random)), ttlMillis: 1_000, nowMillis: now,
                    fencingFloor: LockTable.fencingFloor(epoch: epoch))
                for case .granted(_, _, let token) in actions where token != last {
                    #expect(token > last, "seed \(seed) step \(step)")
                    last = token
                }
            default:
                for case .granted(_, _, let token) in table.expire(nowMillis: now + Int64.random(in: 0...2_000, using: &random)) {
                    #expect(token > last, "seed \(seed) step \(step)")
                    last = token
                }
            }
        }
    }

    @Test func droppingAPartitionsLocksKeepsTheOthers() {
        var table = LockTable()
        let other = LockTable.LockName(tenant: TenantID("acme"), name: "invoices")
        _ = table.request(Self.lock, owner: Self.owner(1), ttlMillis: nil, nowMillis: 0)
        _ = table.request(other, owner: Self.owner(1), ttlMillis: nil, nowMillis: 0)
        table.dropLocks { $0 == Self.lock }
        #expect(table.fencingToken(of: Self.lock, nowMillis: 1) == nil)
        #expect(table.fencingToken(of: other, nowMillis: 1) == 1)
    }
}

@Suite struct LockTakeoverTests {
    static let lock = LockTable.LockName(tenant: TenantID("acme"), name: "orders")

    static func owner(_ session: UInt64) -> LockTable.Owner { .init(session: SessionID(rawValue: session), requestId: "r\(session)") }

    @Test func aNewOwnerRestoresTheHolderAndWaitersAndGrantsAboveTheFloor() {
        var old = LockTable()
        _ = old.request(Self.lock, owner: Self.owner(1), ttlMillis: 5_000, nowMillis: 0)
        _ = old.request(Self.lock, owner: Self.owner(2), ttlMillis: 3_000, nowMillis: 0)
        let states = old.states(where: { _ in true }, nowMillis: 1_000)
        #expect(states == [.init(
            name: Self.lock, lastFencingToken: 1, holder: .init(owner: Self.owner(1), fencingToken: 1, remainingMillis: 4_000),
            queue: [.init(owner: Self.owner(2), ttlMillis: 3_000)])])

        var new = LockTable()
        let floor = LockTable.fencingFloor(epoch: 2)
        #expect(new.restore(states, nowMillis: 50_000, fencingFloor: floor).isEmpty)
        #expect(new.fencingToken(of: Self.lock, nowMillis: 53_999) == 1)
        // The holder releases with the token it was granted; the waiter gets one above the floor.
        #expect(new.release(Self.lock, session: SessionID(rawValue: 1), requestId: "r1", fencingToken: 1, nowMillis: 51_000) == [
            .released(Self.lock, session: SessionID(rawValue: 1), requestId: "r1", success: true),
            .granted(Self.lock, Self.owner(2), fencingToken: floor + 1),
        ])
    }

    @Test func aLockWhoseHolderIsGoneGoesToItsNextWaiter() {
        let state = LockTable.State(name: Self.lock, lastFencingToken: 7, holder: nil, queue: [.init(owner: Self.owner(3), ttlMillis: 2_000)])
        var table = LockTable()
        #expect(table.restore([state], nowMillis: 0, fencingFloor: 0) == [.granted(Self.lock, Self.owner(3), fencingToken: 8)])
    }

    @Test func aLockTheNewOwnerAlreadyGrantedKeepsItsHolder() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.owner(9), ttlMillis: 5_000, nowMillis: 0, fencingFloor: 1 << 32)
        let late = LockTable.State(
            name: Self.lock, lastFencingToken: 4, holder: .init(owner: Self.owner(1), fencingToken: 4, remainingMillis: 1_000), queue: [])
        #expect(table.restore([late], nowMillis: 10, fencingFloor: 1 << 32).isEmpty)
        let granted: Int64 = (1 << 32) + 1
        #expect(table.fencingToken(of: Self.lock, nowMillis: 20) == granted)
    }

    @Test func lockCopiesRoundTripAndTheLatestWins() throws {
        let address = SessionAddress(node: NodeID("n2"), incarnation: "run", session: .max)
        let lock = ReplicatedLock(
            tenant: TenantID("acme"), name: "orders", lastFencingToken: 5,
            holder: .init(session: address, requestId: "a", fencingToken: 5, remainingMillis: 900),
            queue: [.init(session: SessionAddress(node: NodeID("n3"), incarnation: "r3", session: 4), requestId: "b", ttlMillis: 1_000)])
        let copy = LockCopy(partition: 17, epoch: 3, version: 10, locks: [lock])
        #expect(try LockCopy(decoding: copy.encoded()) == copy)
        #expect(throws: ClusterMessageError.self) {
            try LockCopy(decoding: LockCopy(partition: 271, epoch: 3, version: 1, locks: []).encoded())
        }

        let copies = LockCopies()
        copies.store(copy)
        copies.store(LockCopy(partition: 17, epoch: 2, version: 99, locks: []))  // a deposed owner's
        copies.store(LockCopy(partition: 17, epoch: 3, version: 9, locks: []))  // an earlier change, arriving late
        #expect(copies.take(17) == [lock])
        #expect(copies.take(17).isEmpty)
        copies.store(LockCopy(partition: 17, epoch: 3, version: 9, locks: []))
        copies.store(LockCopy(partition: 17, epoch: 4, version: 1, locks: [lock]))  // the next owner's first
        #expect(copies.take(17) == [lock])
        copies.store(LockCopy(partition: 1, epoch: 1, version: 1, locks: [lock]))
        copies.store(LockCopy(partition: 2, epoch: 1, version: 1, locks: [lock]))
        copies.store(LockCopy(partition: 3, epoch: 2, version: 1, locks: [lock]))
        // Partition 1 moved on to epoch 2 elsewhere: its copy is stale.
        copies.keepOnly { partition, epoch in epoch >= [1: 2, 2: 1, 3: 2][partition]! }
        #expect(copies.partitions == [2, 3])
    }
}

/// A `LockReplication` that holds each change's `copied` until the test lets it go.
private final class HeldLockReplication: LockReplication {
    private let held = Mutex<[(partition: Int, copied: @Sendable () -> Void)]>([])

    func changed(
        partition: Int, locks: [LockTable.State], subscribers: [SessionID: any Subscriber], copied: @escaping @Sendable () -> Void
    ) {
        held.withLock { $0.append((partition, copied)) }
    }

    var count: Int { held.withLock { $0.count } }

    func releaseAll() {
        for copied in held.withLock({ held in defer { held.removeAll() }; return held.map(\.copied) }) { copied() }
    }
}

@Suite struct LockGrantAfterCopyTests {
    static let tenant: TenantID = "tn_lock_copies"

    @Test func aGrantWaitsForItsLocksCopy() async {
        let locks = LockRegistry()
        let replication = HeldLockReplication()
        await locks.replicate(to: replication)
        let holder = RecordingSubscriber()
        let waiter = RecordingSubscriber()
        await locks.request(LockRequest(requestId: "r1", name: "job", ttl: 60_000), tenant: Self.tenant, subscriber: holder)
        #expect(holder.messages.isEmpty, "not granted before the backups have the lock")
        #expect(replication.count == 1)
        replication.releaseAll()
        #expect(holder.messages.map(\.type) == ["LOCK_GRANTED"])

        await locks.request(LockRequest(requestId: "r2", name: "job", ttl: 60_000), tenant: Self.tenant, subscriber: waiter)
        replication.releaseAll()  // the waiter's place is copied; nothing to grant yet
        #expect(waiter.messages.isEmpty)
        guard case .lockGranted(let granted) = holder.messages.first else { return }
        await locks.release(LockRelease(requestId: "r1", name: "job", fencingToken: granted.fencingToken), tenant: Self.tenant, subscriber: holder)
        // The release is answered at once; the next holder only once the copy naming it is made.
        #expect(holder.messages.map(\.type) == ["LOCK_GRANTED", "LOCK_RELEASED"])
        #expect(waiter.messages.isEmpty)
        replication.releaseAll()
        #expect(waiter.messages.map(\.type) == ["LOCK_GRANTED"])
    }
}
