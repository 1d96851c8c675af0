@testable import DataPlane
import Testing
import TopGunCore

/// What the lease rows say about the cluster: who may be given partitions, and each node's
/// state as `GET /cluster` reports it.
@Suite struct MembershipViewTests {
    typealias F = MembershipFixtures

    // MARK: assignable

    @Test func onlyLiveActiveReachableNodesOfTheSameProtocolAreAssignable() {
        let view = F.view([
            F.lease("g"),
            F.lease("b", live: false),
            F.lease("c", status: .leaving),
            F.lease("d", websocketURL: ""),
            F.lease("e", httpURL: ""),
            F.lease("f", protocolVersion: F.protocolVersion + 1),
            F.lease("a"),
            F.lease("h", reachable: false),
        ])
        #expect(view.assignable(protocolVersion: F.protocolVersion) == F.members(["a", "g"]))
        // Another protocol version: only the node speaking it.
        #expect(view.assignable(protocolVersion: F.protocolVersion + 1) == F.members(["f"]))
        #expect(view.assignable(protocolVersion: 99).isEmpty)
    }

    @Test func assignableMembersCarryTheirLeasesEndpointsAndRun() {
        let view = F.view([F.lease("a", websocketURL: "ws://10.0.0.1:1/ws", httpURL: "http://10.0.0.1:1")])
        #expect(view.assignable(protocolVersion: F.protocolVersion)
                == [PartitionTable.Member(id: NodeID("a"), websocketURL: "ws://10.0.0.1:1/ws", httpURL: "http://10.0.0.1:1", incarnation: "a-run")])
    }

    @Test func aMemberWhoseLiveLeaseHoldsAnotherRunRestarted() {
        let table = F.table(members: ["a", "b", "c", "d"]) { ["a", "b", "c", "d"][$0 % 4] }
        var restartedB = F.lease("b")
        restartedB.lease.incarnation = "b-run2"
        var restartedDeadC = F.lease("c", live: false)
        restartedDeadC.lease.incarnation = "c-run2"
        // a: same run; b: a new run, live; c: a new run whose lease expired (dead, not
        // restarted); d: no lease row.
        let view = F.view([F.lease("a"), restartedB, restartedDeadC])
        #expect(view.restarted(since: table) == [NodeID("b")])
        // A table that records no runs (written before they were) shows no restart.
        let unrecorded = PartitionTable(
            version: 1, members: table.members.map { PartitionTable.Member(id: $0.id) }, assignments: table.assignments)!
        #expect(view.restarted(since: unrecorded).isEmpty)
    }

    /// Whatever order the rows come in, the assignable members are the same, sorted by id.
    @Test(arguments: 0..<20)
    func assignableIsSortedWhateverTheRowOrder(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var leases: [MemberLease] = []
        for index in 0..<(1 + Int(random.next() % 12)) {
            leases.append(F.lease(
                "n\(random.next() % 1000)-\(index)",
                status: random.next() % 4 == 0 ? .leaving : .active,
                live: random.next() % 4 != 0,
                reachable: random.next() % 5 != 0,
                protocolVersion: random.next() % 6 == 0 ? 2 : 1))
        }
        let expected = leases
            .filter { $0.isLive && $0.lease.status == .active && $0.lease.hasClientEndpoints && $0.lease.protocolVersion == 1 }
            .map(\.lease.node).sorted()
        let assignable = F.view(leases.shuffled(using: &random)).assignable(protocolVersion: 1)
        #expect(assignable.map(\.id) == expected, "seed \(seed)")
        #expect(F.view(leases.reversed()).assignable(protocolVersion: 1) == assignable)
    }

    // MARK: entries

    @Test func entriesGiveEveryTableMemberAndEveryLiveLeaseItsState() {
        let table = F.table(members: ["active", "dead-expired", "dead-gone", "leaving"]) { partition in
            ["active", "dead-expired", "dead-gone", "leaving"][partition % 4]
        }
        let view = F.view([
            F.lease("active"),
            F.lease("leaving", status: .leaving),
            F.lease("dead-expired", live: false, websocketURL: "ws://last/ws", httpURL: "http://last"),
            F.lease("joining"),
            F.lease("joining-leaving", status: .leaving),
            F.lease("expired-stranger", live: false),
            // Live but unreachable or of another protocol: still reported, by its lease.
            F.lease("joining-unreachable", reachable: false),
        ])
        let entries = view.entries(table: table)
        let byNode = Dictionary(uniqueKeysWithValues: entries.map { ($0.node.rawValue, $0) })
        #expect(entries.map(\.node) == entries.map(\.node).sorted(), "sorted by node id")
        #expect(Set(byNode.keys) == ["active", "dead-expired", "dead-gone", "leaving", "joining", "joining-leaving", "joining-unreachable"],
                "an expired lease of a node outside the table is omitted")
        #expect(byNode["active"]?.status == .active)
        #expect(byNode["leaving"]?.status == .leaving)
        #expect(byNode["dead-expired"]?.status == .dead)
        #expect(byNode["dead-gone"]?.status == .dead, "a table member without a lease row is dead")
        #expect(byNode["joining"]?.status == .joining)
        #expect(byNode["joining-leaving"]?.status == .leaving, "a live node leaving before it was ever given partitions")
        #expect(byNode["joining-unreachable"]?.status == .joining)
        // Endpoints: the lease's where there is one, else the table's.
        #expect(byNode["active"]?.websocketURL == F.websocketURL("active"))
        #expect(byNode["dead-expired"]?.websocketURL == "ws://last/ws")
        #expect(byNode["dead-expired"]?.httpURL == "http://last")
        #expect(byNode["dead-gone"]?.websocketURL == F.websocketURL("dead-gone"))
        #expect(byNode["dead-gone"]?.httpURL == F.httpURL("dead-gone"))
        #expect(byNode["joining-unreachable"]?.websocketURL == "")
    }

    @Test func withoutATableEveryLiveLeaseIsJoiningOrLeaving() {
        let view = F.view([F.lease("a"), F.lease("b", status: .leaving), F.lease("c", live: false), F.lease("d", status: .leaving, live: false)])
        let entries = view.entries(table: nil)
        #expect(entries.map(\.node.rawValue) == ["a", "b"])
        #expect(entries.map(\.status) == [.joining, .leaving])
    }

    @Test func noLeasesAndNoTableGiveNoEntries() {
        #expect(F.view([]).entries(table: nil).isEmpty)
        #expect(F.view([]).assignable(protocolVersion: 1).isEmpty)
    }

    @Test func aDeadTableMemberLeavingOrActiveIsDead() {
        let table = F.table(members: ["a", "b"]) { $0 % 2 == 0 ? "a" : "b" }
        let entries = F.view([F.lease("a", status: .leaving, live: false), F.lease("b", live: false)]).entries(table: table)
        #expect(entries.map(\.status) == [.dead, .dead])
    }

    /// The rule, over random tables and lease rows: a table member is ACTIVE, LEAVING or DEAD;
    /// a node outside the table is JOINING or LEAVING while its lease is live, and absent
    /// otherwise.
    @Test(arguments: 0..<30)
    func entriesFollowTheRule(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let names = (0..<8).map { "n\($0)" }
        let inTable = names.filter { _ in random.next() % 2 == 0 }
        var leases: [MemberLease] = []
        for name in names where random.next() % 4 != 0 {
            leases.append(F.lease(name, status: random.next() % 3 == 0 ? .leaving : .active, live: random.next() % 3 != 0,
                                  reachable: random.next() % 4 != 0))
        }
        let table = inTable.isEmpty ? nil : F.table(members: inTable) { inTable[$0 % inTable.count] }
        let entries = F.view(leases.shuffled(using: &random)).entries(table: table)
        #expect(entries.map(\.node) == entries.map(\.node).sorted())
        #expect(Set(entries.map(\.node)).count == entries.count, "one entry per node")
        let byNode = Dictionary(uniqueKeysWithValues: entries.map { ($0.node.rawValue, $0.status) })
        for name in names {
            let lease = leases.first { $0.lease.node.rawValue == name }
            let member = inTable.contains(name)
            let expected: MembershipView.Status?
            switch (lease, member) {
            case (nil, true): expected = .dead
            case (nil, false): expected = nil
            case (let lease?, _) where !lease.isLive: expected = member ? .dead : nil
            case (let lease?, _) where lease.lease.status == .leaving: expected = .leaving
            case (_, true): expected = .active
            case (_, false): expected = .joining
            }
            #expect(byNode[name] == expected, "seed \(seed): \(name) (lease \(String(describing: lease)), in table \(member))")
        }
    }
}
