@testable import DataPlane
import Synchronization
import Testing
import TopGunCore

@Suite struct QuorumWatchTests {
    final class ManualClock: Sendable {
        let now = Mutex<Duration>(.zero)
        func advance(_ by: Duration) { now.withLock { $0 += by } }
    }

    static func watch(_ clock: ManualClock) -> QuorumWatch {
        QuorumWatch(localNode: NodeID("n1"), window: .seconds(2), elapsed: { clock.now.withLock { $0 } })
    }

    static let three = ["n1", "n2", "n3"].map(NodeID.init)

    @Test func aNodeAloneInItsTableHasItsMajority() {
        let quorum = Self.watch(ManualClock())
        quorum.members([NodeID("n1")])
        #expect(quorum.isHeld)
    }

    @Test func aMajorityNeedsMoreThanHalfOfTheTableCountingItself() {
        let clock = ManualClock()
        let quorum = Self.watch(clock)
        quorum.members(Self.three)
        #expect(!quorum.isHeld, "nobody answered yet")
        quorum.heard(from: NodeID("n2"))
        #expect(quorum.isHeld)
        #expect(quorum.reach == (2, 3))
        quorum.members(Self.three + [NodeID("n4")])
        #expect(!quorum.isHeld, "2 of 4 is no majority")
        quorum.heard(from: NodeID("n4"))
        #expect(quorum.isHeld)
    }

    @Test func aPeerSilentForTheWindowNoLongerCounts() {
        let clock = ManualClock()
        let quorum = Self.watch(clock)
        quorum.members(Self.three)
        quorum.heard(from: NodeID("n2"))
        clock.advance(.milliseconds(1_999))
        #expect(quorum.isHeld)
        clock.advance(.milliseconds(2))
        #expect(!quorum.isHeld)
    }

    /// A write is acknowledged only if the majority held for its whole wait: a loss in between,
    /// even one that healed before the end, starts a new term.
    @Test func aLossDuringTheWaitEndsTheTerm() {
        let clock = ManualClock()
        let quorum = Self.watch(clock)
        quorum.members(Self.three)
        quorum.heard(from: NodeID("n3"))
        let taken = quorum.currentTerm
        #expect(taken != nil)
        #expect(quorum.isHeld(throughout: taken))
        clock.advance(.seconds(3))
        #expect(!quorum.isHeld(throughout: taken))
        quorum.heard(from: NodeID("n2"))
        #expect(quorum.isHeld)
        #expect(!quorum.isHeld(throughout: taken), "healed, but a new term")
        #expect(!quorum.isHeld(throughout: nil))
    }
}
