@testable import DataPlane
import TopGunCore

/// The faults of a schedule (crashes and restarts, links cut between nodes and to the
/// database, heals) and the fault-free settling phase after them.
extension SimWorld {
    // MARK: Faults

    /// Ground truth for split-brain safety: whether `node` has been cut off from most of the
    /// nodes of `table` for at least a quorum window (a lease's length), so that it cannot
    /// have heard from them within the window (a cut link loses every message).
    func cutOffFromMajority(_ node: Int, table: PartitionTable) -> Bool {
        let members = table.members.compactMap { member in Int(member.id.rawValue.dropFirst()) }
        let gone = members.filter { other in
            guard other != node, let since = network.cutAt[SimNetwork.Pair(node, other)] else { return false }
            return now - since >= settings.leaseMs
        }
        return 2 * (members.count - gone.count) <= members.count
    }

    func injectFault() {
        let up = nodes.indices.filter { nodes[$0] != nil }
        let roll = faults.int(0...99)
        switch roll {
        case 0..<18:
            guard let victim = up.isEmpty ? nil : faults.pick(up) else { return }
            crash(victim)
            schedule(.restart(node: victim), after: faults.int64(settings.restartDelayMs))
        case 18..<38:
            let a = faults.int(0...(nodes.count - 1))
            let b = faults.int(0...(nodes.count - 1))
            guard a != b else { return }
            network.cut(a, b, at: now)
            log("link n\(a)-n\(b) cut")
        case 38..<55:
            let links = network.cutLinks.sorted()
            guard !links.isEmpty else { return }
            let link = faults.pick(links)
            network.heal(link.a, link.b)
            log("link n\(link.a)-n\(link.b) healed")
        case 55..<70:
            let node = faults.int(0...(nodes.count - 1))
            network.cutDatabase(node)
            log("n\(node) cut off from the database")
        case 70..<85:
            let cut = network.cutFromDatabase.sorted()
            guard !cut.isEmpty else { return }
            healDatabase(faults.pick(cut))
        case 85..<94:
            let node = faults.int(0...(nodes.count - 1))
            for other in nodes.indices where other != node { network.cut(node, other, at: now) }
            log("n\(node) cut off from every node")
        default:
            healEverything()
        }
    }

    func crash(_ index: Int) {
        guard let node = nodes[index] else { return }
        nodes[index] = nil
        // Its connections close: the database hears of it now, or once the link heals.
        if network.reachesDatabase(index), let holder = database.lock, holder.node == index { database.endSession(holder) }
        crashes.append((now, node.id))
        log("\(node.id) crashes")
        mix(UInt64(index), 0xC8A5)
    }

    func healDatabase(_ index: Int) {
        network.healDatabase(index)
        log("n\(index) reaches the database again")
        // A coordinator session its node gave up (or a crashed run's) while cut off ends now.
        if let holder = database.lock, holder.node == index, !usesSession(holder) { database.endSession(holder) }
        // The listener reconnects and signals: the table is read again.
        if let node = nodes[index] { schedule(.tableNotification(node: index, generation: node.generation), after: 1) }
    }

    func healEverything() {
        for index in network.cutFromDatabase.sorted() { healDatabase(index) }
        network.healAll()
        log("every link healed")
    }

    // MARK: Settling

    /// The fault-free end of a schedule: everything healed and restarted, no more client
    /// writes; the cluster must come to rest, bounded by virtual time.
    func beginSettling() {
        phase = .settling
        log("settling begins")
        network.chaos = .calm
        healEverything()
        for index in nodes.indices where nodes[index] == nil { schedule(.restart(node: index), after: 0) }
        settleDeadline = now + settings.settleLimitMs
        schedule(.settleCheck, after: 250)
    }

    func checkSettled() {
        if let reason = SimQuiescence.unsettledReason(self) {
            if now >= settleDeadline {
                phase = .stuck
                stuckReason = reason
                return
            }
            schedule(.settleCheck, after: 1_000)
            return
        }
        phase = .settled
        settledAt = now
    }
}
