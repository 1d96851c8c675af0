import Testing
import Tenancy
@testable import DataPlane

@Suite struct LockTableTests {
    static let lock = LockTable.LockName(tenant: "tn_a", name: "L1")
    static let a = LockTable.Owner(session: SessionID(rawValue: 1), requestId: "ra")
    static let b = LockTable.Owner(session: SessionID(rawValue: 2), requestId: "rb")

    @Test func freeLockIsGrantedWithIncreasingFencingTokens() {
        var table = LockTable()
        #expect(table.request(Self.lock, owner: Self.a, ttlMillis: 5000, nowMillis: 0) == [.granted(Self.lock, Self.a, fencingToken: 1)])
        #expect(table.release(Self.lock, session: Self.a.session, requestId: "rel", fencingToken: 1, nowMillis: 10)
            == [.released(Self.lock, session: Self.a.session, requestId: "rel", success: true)])
        #expect(table.request(Self.lock, owner: Self.b, ttlMillis: 5000, nowMillis: 20) == [.granted(Self.lock, Self.b, fencingToken: 2)])
    }

    @Test func contendedRequestIsQueuedNotRefusedAndGrantedOnRelease() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 5000, nowMillis: 0)
        #expect(table.request(Self.lock, owner: Self.b, ttlMillis: 5000, nowMillis: 1).isEmpty)
        #expect(table.queueLength(of: Self.lock) == 1)
        let actions = table.release(Self.lock, session: Self.a.session, requestId: "rel", fencingToken: 1, nowMillis: 2)
        #expect(actions == [.released(Self.lock, session: Self.a.session, requestId: "rel", success: true), .granted(Self.lock, Self.b, fencingToken: 2)])
    }

    @Test func holderRequestingAgainKeepsItsTokenAndExtendsTheLease() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 1000, nowMillis: 0)
        #expect(table.request(Self.lock, owner: .init(session: Self.a.session, requestId: "again"), ttlMillis: 1000, nowMillis: 900)
            == [.granted(Self.lock, .init(session: Self.a.session, requestId: "again"), fencingToken: 1)])
        #expect(table.expire(nowMillis: 1500).isEmpty)  // extended to 1900
        #expect(table.fencingToken(of: Self.lock, nowMillis: 1500) == 1)
    }

    @Test func expiredLeaseGoesToTheNextWaiter() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 1000, nowMillis: 0)
        _ = table.request(Self.lock, owner: Self.b, ttlMillis: 1000, nowMillis: 10)
        #expect(table.expire(nowMillis: 999).isEmpty)
        #expect(table.expire(nowMillis: 1000) == [.granted(Self.lock, Self.b, fencingToken: 2)])
    }

    @Test func releaseWithAWrongTokenOrByAnotherSessionFails() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 5000, nowMillis: 0)
        #expect(table.release(Self.lock, session: Self.a.session, requestId: "x", fencingToken: 7, nowMillis: 1)
            == [.released(Self.lock, session: Self.a.session, requestId: "x", success: false)])
        #expect(table.release(Self.lock, session: Self.b.session, requestId: "y", fencingToken: 1, nowMillis: 1)
            == [.released(Self.lock, session: Self.b.session, requestId: "y", success: false)])
        #expect(table.fencingToken(of: Self.lock, nowMillis: 2) == 1)
    }

    @Test func releaseOfAnUnknownLockIsReported() {
        var table = LockTable()
        #expect(table.release(Self.lock, session: Self.a.session, requestId: "x", fencingToken: 1, nowMillis: 0)
            == [.unknownLock(Self.lock, session: Self.a.session, requestId: "x")])
    }

    @Test func disconnectReleasesHeldLocksAndDropsQueuedRequests() {
        var table = LockTable()
        let c = LockTable.Owner(session: SessionID(rawValue: 3), requestId: "rc")
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 5000, nowMillis: 0)
        _ = table.request(Self.lock, owner: Self.b, ttlMillis: 5000, nowMillis: 1)
        _ = table.request(Self.lock, owner: c, ttlMillis: 5000, nowMillis: 2)
        #expect(table.removeSession(Self.b.session, nowMillis: 3).isEmpty)
        #expect(table.removeSession(Self.a.session, nowMillis: 4) == [.granted(Self.lock, c, fencingToken: 2)])
    }

    @Test func ttlIsClampedToTheAllowedRange() {
        var table = LockTable()
        _ = table.request(Self.lock, owner: Self.a, ttlMillis: 1, nowMillis: 0)
        #expect(table.fencingToken(of: Self.lock, nowMillis: 999) == 1)  // at least 1000 ms
        var long = LockTable()
        _ = long.request(Self.lock, owner: Self.a, ttlMillis: 10_000_000, nowMillis: 0)
        #expect(long.fencingToken(of: Self.lock, nowMillis: 300_001) == nil)  // at most 300 s
    }

    @Test func locksOfDifferentTenantsAreIndependent() {
        var table = LockTable()
        let other = LockTable.LockName(tenant: "tn_b", name: "L1")
        #expect(table.request(Self.lock, owner: Self.a, ttlMillis: 5000, nowMillis: 0) == [.granted(Self.lock, Self.a, fencingToken: 1)])
        #expect(table.request(other, owner: Self.b, ttlMillis: 5000, nowMillis: 0) == [.granted(other, Self.b, fencingToken: 1)])
    }
}
