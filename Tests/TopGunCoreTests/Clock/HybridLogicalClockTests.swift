import Testing
import TopGunCore

/// Vectors of protocol.md §2.4, §2.5 and §11.5.
@Suite struct HybridLogicalClockTests {
    @Test func updateFromAheadRemoteThenNowContinuesRemoteCounter() {
        var hlc = HybridLogicalClock(nodeId: "n", clock: ManualClock(1_000_000))
        hlc.update(Timestamp(millis: 1_000_100, counter: 5, nodeId: "r"))
        #expect(hlc.now() == Timestamp(millis: 1_000_100, counter: 7, nodeId: "n"))
    }

    @Test func updateAtSameMillisTakesMaxCounterPlusOne() {
        var hlc = HybridLogicalClock(nodeId: "n", clock: ManualClock(1_000_000))
        #expect(hlc.now().counter == 0)
        hlc.update(Timestamp(millis: 1_000_000, counter: 5, nodeId: "r"))
        #expect(hlc.now() == Timestamp(millis: 1_000_000, counter: 7, nodeId: "n"))
    }

    @Test func updateFromBehindRemoteKeepsLocalMillis() {
        var hlc = HybridLogicalClock(nodeId: "n", clock: ManualClock(1_000_100))
        _ = hlc.now()
        hlc.update(Timestamp(millis: 1_000_000, counter: 10, nodeId: "r"))
        #expect(hlc.now().millis == 1_000_100)
    }

    @Test func physicalClockAheadOfBothResetsCounter() {
        var hlc = HybridLogicalClock(nodeId: "n", clock: ManualClock(1_000_200))
        hlc.update(Timestamp(millis: 1_000_100, counter: 5, nodeId: "r"))
        #expect(hlc.now() == Timestamp(millis: 1_000_200, counter: 1, nodeId: "n"))
    }

    @Test func frozenClockCountsUpAndResetsWhenTimeMoves() {
        let clock = ManualClock(5_000)
        var hlc = HybridLogicalClock(nodeId: "n", clock: clock)
        #expect([hlc.now().counter, hlc.now().counter, hlc.now().counter] == [0, 1, 2])
        clock.set(5_001)
        #expect(hlc.now() == Timestamp(millis: 5_001, counter: 0, nodeId: "n"))
    }

    @Test func driftBeyondLimitIsReportedButApplied() {
        var hlc = HybridLogicalClock(nodeId: "n", clock: ManualClock(1_000_000))
        let result = hlc.update(Timestamp(millis: 1_000_000 + 60_001, counter: 0, nodeId: "r"))
        #expect(result == .appliedWithDrift(millis: 60_001))
        #expect(hlc.now().millis == 1_060_001)
        #expect(hlc.update(Timestamp(millis: 1_000_000 + 60_000, counter: 0, nodeId: "r")) == .applied)
    }

    @Test func timestampsAreMonotonicAcrossUpdates() {
        let clock = ManualClock(10)
        var hlc = HybridLogicalClock(nodeId: "n", clock: clock)
        var previous = hlc.now()
        for step in 0..<200 {
            if step % 7 == 0 { clock.set(Int64(10 + step / 3)) }
            if step % 5 == 0 { hlc.update(Timestamp(millis: Int64(8 + step / 2), counter: Int64(step % 4), nodeId: "r")) }
            let next = hlc.now()
            #expect(previous < next)
            previous = next
        }
    }

    @Test func orderingIsMillisThenCounterThenNodeId() {
        #expect(Timestamp(millis: 100, counter: 5, nodeId: "z") < Timestamp(millis: 200, counter: 0, nodeId: "a"))
        #expect(Timestamp(millis: 100, counter: 1, nodeId: "z") < Timestamp(millis: 100, counter: 2, nodeId: "a"))
        #expect(Timestamp(millis: 100, counter: 1, nodeId: "a") < Timestamp(millis: 100, counter: 1, nodeId: "b"))
        #expect(!(Timestamp(millis: 1, counter: 1, nodeId: "a") < Timestamp(millis: 1, counter: 1, nodeId: "a")))
    }

    /// Equality agrees with the ordering: node ids that differ in bytes ("\u{e9}", "e\u{301}")
    /// are ordered, so they are not equal.
    @Test func canonicallyEquivalentNodeIdsAreDifferentTimestamps() {
        let composed = Timestamp(millis: 1, counter: 1, nodeId: "\u{e9}")
        let decomposed = Timestamp(millis: 1, counter: 1, nodeId: "e\u{301}")
        #expect(decomposed < composed)
        #expect(composed != decomposed)
        #expect(Set([composed, decomposed]).count == 2)
        let record = ORMapRecord(value: "x", timestamp: composed, tag: composed.description)
        #expect(record != ORMapRecord(value: "x", timestamp: decomposed, tag: decomposed.description))
    }

    @Test func stringFormRoundTrips() {
        let ts = Timestamp(millis: 1_234_567_890, counter: 42, nodeId: "my-node")
        #expect(ts.description == "1234567890:42:my-node")
        #expect(Timestamp("1234567890:42:my-node") == ts)
    }

    @Test(arguments: ["123:456", "", "a:1:n", "1:b:n", "1:2:"])
    func malformedStringFormsDoNotParse(_ text: String) {
        #expect(Timestamp(text) == nil)
    }

    @Test func nodeIdMayHoldColonsAfterTheSecond() {
        // The Rust parser splits into at most three parts; the rest is the node id.
        #expect(Timestamp("1:2:a:b")?.nodeId == "a:b")
    }
}
