import PropertyBased
import TopGunCore

/// Small key, node and value spaces so that random operations collide often: convergence
/// is only interesting when replicas disagree about the same keys.
enum CRDTGen {
    static let keys = ["a", "b", "c", "d", "e"]
    static let nodes = ["n1", "n2", "n3"]

    static let timestamp = zip(Gen.int(in: 1...20), Gen.int(in: 0...3), Gen<String?>.element(of: nodes))
        .map { millis, counter, node in Timestamp(millis: Int64(millis), counter: Int64(counter), nodeId: node ?? "n1") }

    /// (key, record) pairs; a nil value is a tombstone. A timestamp names one write (the
    /// HLC never repeats one), so value and TTL are derived from it: two ops with the same
    /// key and timestamp are the same op delivered twice, as in a real system.
    static let lwwOp = zip(Gen<String?>.element(of: keys), timestamp)
        .map { key, timestamp in
            let seed = timestamp.millis &* 31 &+ timestamp.counter &* 7 &+ Int64(timestamp.nodeId.utf8.last ?? 0)
            let value: DataValue? = seed % 5 == 0 ? nil : .int(seed % 10)
            return (key: key ?? "a", record: LWWRecord(value: value, timestamp: timestamp, ttlMs: seed % 4 == 0 ? 5 : nil))
        }

    static let lwwOps = lwwOp.array(of: 0...30)

    enum ORMapOp: Sendable {
        case add(key: String, record: ORMapRecord)
        case remove(key: String, tag: String)
    }

    /// Adds with fresh tags, and removes of tags that an add in the same run produced
    /// (or of unknown tags, which must be harmless).
    static let orOps = zip(
        zip(Gen<String?>.element(of: keys), Gen.int(in: 0...9), timestamp).array(of: 1...20),
        Gen.int(in: 0...40).array(of: 0...10)
    ).map { adds, removeIndexes in
        var ops: [ORMapOp] = []
        var seen = Set<String>()
        var tags: [(String, String)] = []
        for (key, value, timestamp) in adds {
            let tag = timestamp.description
            guard seen.insert(tag).inserted else { continue }  // tags are unique per add
            let key = key ?? "a"
            ops.append(.add(key: key, record: ORMapRecord(value: .int(Int64(value)), timestamp: timestamp, tag: tag)))
            tags.append((key, tag))
        }
        for index in removeIndexes {
            if index < tags.count {
                ops.append(.remove(key: tags[index].0, tag: tags[index].1))
            } else {
                ops.append(.remove(key: "a", tag: "999:0:ghost\(index)"))
            }
        }
        return ops
    }

    static let counterOps = zip(Gen<String?>.element(of: nodes), Gen.int(in: -5...5)).map { ($0 ?? "n1", Double($1)) }.array(of: 0...20)

    /// A deterministic permutation from a seed (so a failing case reproduces).
    static func shuffle<T>(_ items: [T], seed: Int) -> [T] {
        var state = UInt64(truncatingIfNeeded: seed) &+ 0x9e37_79b9_7f4a_7c15
        var result = items
        guard result.count > 1 else { return result }
        for i in stride(from: result.count - 1, to: 0, by: -1) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let j = Int((state >> 33) % UInt64(i + 1))
            result.swapAt(i, j)
        }
        return result
    }
}

extension ORMap {
    mutating func apply(_ op: CRDTGen.ORMapOp) {
        switch op {
        case .add(let key, let record): apply(key: key, record: record)
        case .remove(let key, let tag): applyTombstone(tag: tag, key: key)
        }
    }

    /// Everything observable: live records per key and the tombstone set.
    var observable: [String: [ORMapRecord]] {
        var out: [String: [ORMapRecord]] = [:]
        for key in keys { out[key] = records(forKey: key) }
        return out
    }
}
