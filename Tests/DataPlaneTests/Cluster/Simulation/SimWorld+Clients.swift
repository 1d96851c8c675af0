@testable import DataPlane
import TopGunCore

/// The clients: writes to a few keys at random nodes, each with a unique, increasing
/// timestamp and PERSISTED or REPLICATED, and what they heard back.
extension SimWorld {
    // MARK: Clients

    var writeCount: Int { writes.count }

    func clientWrite() {
        let id = writes.count
        let roll = clients.int(0...99)
        let kind: SimWrite.Kind
        let key: StorageKey
        if roll < 65 {
            kind = roll < 55 ? .put : .remove
            key = SimRecords.storageKey(map: SimRecords.lwwMap, key: clients.pick(SimRecords.lwwKeys))
        } else {
            let name = clients.pick(SimRecords.orKeys)
            key = SimRecords.storageKey(map: SimRecords.orMap, key: name)
            if roll >= 88, let tags = orTags[name], !tags.isEmpty {
                kind = .orRemove(tag: clients.pick(tags))
            } else {
                kind = .orAdd
            }
        }
        // Unique and increasing: the write counter breaks ties within a millisecond.
        let timestamp = Timestamp(millis: 1_000_000 + now, counter: Int64(id), nodeId: "client")
        if kind == .orAdd { orTags[key.key, default: []].append(timestamp.description) }
        let write = SimWrite(
            id: id, key: key, partition: SimRecords.partition(of: key.key), kind: kind, timestamp: timestamp,
            persisted: clients.chance(0.5), value: Int64(id))
        writes.append(write)
        let entry = clients.int(0...(nodes.count - 1))
        guard let node = nodes[entry] else { return writeFailed(id) }
        node.clientSubmit(write)
    }

    func acknowledge(_ write: Int, acker: NodeID, facts: SimAckFacts) {
        acks.append(SimAck(write: write, acker: acker, facts: facts, time: now))
        mix(UInt64(write), 0xACC)
        log("ack \(writes[write].summary) by \(acker) (epoch \(facts.epoch), \(facts.replicas) replicas)"
            + (facts.noOp ? ", a no-op there" : "") + (facts.acrossLeaseLoss ? ", its lease lost since" : ""))
    }

    /// A liveness failure (a busy loop): the run fails with the first one.
    func liveness(_ failure: String) {
        if livenessFailure == nil { livenessFailure = "at \(now)ms: " + failure }
        log("LIVENESS: \(failure)")
    }

    func writeFailed(_ write: Int) {
        failedWrites += 1
    }
}
