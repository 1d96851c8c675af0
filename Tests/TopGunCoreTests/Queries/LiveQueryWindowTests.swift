import Testing
import TopGunCore

/// Top 3 by score, descending, of the active players.
private let topThree = Query(where: ["active": true], sort: SortOrder([SortField("score", .desc)]), limit: 3)

private func player(_ score: Int64, active: Bool = true) -> DataValue {
    ["score": .int(score), "active": .bool(active)]
}

private let initialPlayers: [String: DataValue] = [
    "a": player(50), "b": player(40), "c": player(30), "d": player(20), "e": player(10, active: false),
]

@Suite struct LiveQueryWindowTests {
    @Test func initialWindowShowsTheTopN() {
        let window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.visibleRecords.map(\.key) == ["a", "b", "c"])
        #expect(window.matchingCount == 4)
        #expect(window.isVisible("c"))
        #expect(!window.isVisible("d"))
        #expect(!window.isVisible("e"))
    }

    @Test func newBestRowEntersAndDisplacesTheLastOne() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "f", value: player(45)) == [.leave(key: "c"), .enter(key: "f", value: player(45))])
        #expect(window.visibleRecords.map(\.key) == ["a", "f", "b"])
    }

    @Test func rowBelowTheCutCausesNoEvents() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "f", value: player(5)).isEmpty)
        #expect(window.apply(key: "d", value: player(25)).isEmpty)
        #expect(window.apply(key: "zz", value: player(99, active: false)).isEmpty)
        #expect(window.apply(key: "nobody", value: nil).isEmpty)
        #expect(window.visibleRecords.map(\.key) == ["a", "b", "c"])
    }

    @Test func visibleRowWrittenAndStillVisibleIsAnUpdate() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "c", value: player(45)) == [.update(key: "c", value: player(45))])
        #expect(window.visibleRecords.map(\.key) == ["a", "c", "b"])
        #expect(window.apply(key: "a", value: player(50)) == [.update(key: "a", value: player(50))])
    }

    @Test func deletedVisibleRowLeavesAndPromotesTheNext() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "b", value: nil) == [.leave(key: "b"), .enter(key: "d", value: player(20))])
        #expect(window.visibleRecords.map(\.key) == ["a", "c", "d"])
    }

    @Test func rowThatStopsMatchingLeavesAndPromotes() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "a", value: player(50, active: false)) == [.leave(key: "a"), .enter(key: "d", value: player(20))])
    }

    @Test func rowFallingBelowTheCutLeavesAndPromotes() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "a", value: player(1)) == [.leave(key: "a"), .enter(key: "d", value: player(20))])
        #expect(window.visibleRecords.map(\.key) == ["b", "c", "d"])
    }

    @Test func rowRisingAboveTheCutEntersAndDisplaces() {
        var window = LiveQueryWindow(query: topThree, records: initialPlayers)
        #expect(window.apply(key: "d", value: player(60)) == [.leave(key: "c"), .enter(key: "d", value: player(60))])
    }

    @Test func leavingWithNothingToPromoteIsJustALeave() {
        var window = LiveQueryWindow(query: topThree, records: ["a": player(1), "b": player(2)])
        #expect(window.apply(key: "a", value: nil) == [.leave(key: "a")])
        #expect(window.apply(key: "c", value: player(3)) == [.enter(key: "c", value: player(3))])
    }

    @Test func tombstoneValueCountsAsDelete() {
        var window = LiveQueryWindow(query: Query(), records: ["a": 1])
        #expect(window.apply(key: "a", value: .null) == [.leave(key: "a")])
    }

    @Test func unlimitedQueryNeverDisplaces() {
        var window = LiveQueryWindow(query: Query(where: ["active": true]), records: initialPlayers)
        #expect(window.apply(key: "f", value: player(1)) == [.enter(key: "f", value: player(1))])
        #expect(window.visibleRecords.count == 5)
    }

    @Test func limitZeroShowsNothing() {
        var window = LiveQueryWindow(query: Query(limit: 0), records: ["a": 1])
        #expect(window.visibleRecords.isEmpty)
        #expect(window.apply(key: "b", value: 2).isEmpty)
        #expect(window.apply(key: "a", value: nil).isEmpty)
    }

    @Test func changeCarriesItsWireFields() {
        #expect(QueryChange.enter(key: "k", value: 1).changeType == "ENTER")
        #expect(QueryChange.update(key: "k", value: 1).changeType == "UPDATE")
        #expect(QueryChange.leave(key: "k").changeType == "LEAVE")
        #expect(QueryChange.leave(key: "k").value == nil)
        #expect(QueryChange.update(key: "k", value: 1).value == 1)
    }

    /// Keys are the client's JavaScript strings: a composed and a decomposed "é" are two rows.
    @Test func canonicallyEquivalentKeysAreTwoRows() {
        var window = LiveQueryWindow(query: topThree, records: [(key: "\u{e9}", value: player(50)), (key: "e\u{301}", value: player(40))])
        #expect(window.matchingCount == 2)
        let changes = window.apply(key: "e\u{301}", value: nil)
        // Compared as bytes: `==` on the strings could not tell the two keys apart.
        guard case .leave(let left)? = changes.first, changes.count == 1 else { Issue.record("expected one leave, got \(changes)"); return }
        #expect(Array(left.utf8) == Array("e\u{301}".utf8))
        #expect(window.visibleRecords.map { Array($0.key.utf8) } == [Array("\u{e9}".utf8)])
        #expect(window.isVisible("\u{e9}"))
        #expect(!window.isVisible("e\u{301}"))
    }
}
