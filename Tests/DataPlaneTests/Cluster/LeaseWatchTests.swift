@testable import DataPlane
import Synchronization
import Testing

/// The local judgement of the lease: held for the lease minus a heartbeat after each renewal,
/// and in terms: a REPLICATED wait that spans a gap is not acknowledged.
@Suite struct LeaseWatchTests {
    /// A clock the test moves.
    final class ManualTime: Sendable {
        private let now = Mutex(Duration.zero)
        func advance(_ by: Duration) { now.withLock { $0 += by } }
        var elapsed: Duration { now.withLock { $0 } }
    }

    static func watch(_ time: ManualTime) -> LeaseWatch {
        LeaseWatch(leaseDuration: .seconds(5), heartbeatInterval: .seconds(1), elapsed: { time.elapsed })
    }

    @Test func notHeldBeforeTheFirstRenewal() {
        let watch = Self.watch(ManualTime())
        #expect(!watch.isHeld)
        #expect(watch.currentTerm == nil)
        #expect(!watch.isHeld(throughout: nil))
    }

    @Test func heldUntilAHeartbeatBeforeTheLeaseWouldExpire() {
        let time = ManualTime()
        let watch = Self.watch(time)
        watch.renewed()
        #expect(watch.isHeld)
        time.advance(.milliseconds(3_999))
        #expect(watch.isHeld)
        time.advance(.milliseconds(1))
        #expect(!watch.isHeld, "4 s after the renewal (5 s lease, 1 s heartbeat) it counts as lost")
    }

    @Test func renewalsInTimeKeepOneTerm() {
        let time = ManualTime()
        let watch = Self.watch(time)
        watch.renewed()
        let term = watch.currentTerm
        for _ in 0..<10 {
            time.advance(.seconds(1))
            watch.renewed()
        }
        #expect(watch.currentTerm == term)
        #expect(watch.isHeld(throughout: term))
    }

    @Test func aGapStartsANewTermAndFailsWaitsThatSpanIt() {
        let time = ManualTime()
        let watch = Self.watch(time)
        watch.renewed()
        let before = watch.currentTerm
        // The lease lapses (a slow database), then is renewed again.
        time.advance(.seconds(6))
        #expect(!watch.isHeld(throughout: before))
        watch.renewed()
        #expect(watch.isHeld, "held again")
        #expect(!watch.isHeld(throughout: before), "a wait that began before the gap is not acknowledged")
        let after = watch.currentTerm
        #expect(after != before)
        #expect(watch.isHeld(throughout: after))
    }
}
