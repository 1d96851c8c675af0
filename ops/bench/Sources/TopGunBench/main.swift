import BatchFrames
import Foundation
import TopGunCore
import TopGunWire

// Microbenchmarks of the codec and the CRDT hot path. Prints one JSON object per figure
// on stdout; `ops/bench/run` adds the Python baseline measured on the same bytes.
//
// Usage: TopGunBench codec <frame-output-path>

/// Runs `body` repeatedly for about `seconds`, five rounds, and returns the best rate of
/// `unitsPerCall` units per second: the best round is the one least disturbed by noise.
func measure(seconds: Double = 0.6, unitsPerCall: Double = 1, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    var best = 0.0
    for _ in 0..<5 {
        var calls = 0
        let start = clock.now
        var elapsed = 0.0
        repeat {
            for _ in 0..<32 { body() }
            calls += 32
            let d = clock.now - start
            elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        } while elapsed < seconds
        best = max(best, Double(calls) * unitsPerCall / elapsed)
    }
    return best
}

func emit(_ name: String, _ fields: [String: Double]) {
    let body = fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \(String(format: "%.1f", $0.value))" }.joined(separator: ", ")
    print("{\"figure\": \"\(name)\", \(body)}")
}

/// An OP_BATCH of 100 LWW puts as the HEAD client sends it: per op an id, the map, a
/// key, opType, the record (a ~64-byte object value and an HLC timestamp whose millis is a
/// float64, as msgpackr writes it), and the op-log extras `timestamp` and `synced`.
func clientBatch(ops count: Int) -> OpBatch {
    var ops: [ClientOp] = []
    for i in 0..<count {
        let ts = Timestamp(millis: 1_795_554_913_742 + Int64(i), counter: Int64(i % 3), nodeId: "c7b1a0de-5e55-4a1e-9f0e-3d1c2b4a5f60")
        let value: DataValue = ["title": .string("buy milk and bread #\(i)"), "done": .bool(i % 2 == 0), "priority": .int(Int64(i % 5)), "tags": ["home", "errand"]]
        ops.append(ClientOp(id: String(i + 1), mapName: "todos", key: "todo-\(i)", opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false))
    }
    return OpBatch(ops: ops)
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, arguments[1] == "codec" else {
    FileHandle.standardError.write(Data("usage: TopGunBench codec <frame-output-path>\n".utf8))
    exit(2)
}

let codec = WireCodec()
let batch = clientBatch(ops: 100)
// The client's bytes (float64 millis, as msgpackr writes them), not our compact form.
let frame = clientStyleBytes(.opBatch(batch))
try Data(frame).write(to: URL(fileURLWithPath: arguments[2]))
let frameBytes = Double(frame.count)

// Sanity: the frame decodes to the batch we built.
guard case .opBatch(let decodedBatch) = try codec.decode(frame), decodedBatch == batch else {
    FileHandle.standardError.write(Data("benchmark frame does not round-trip\n".utf8))
    exit(1)
}

var sink = 0
let decodeRate = measure {
    if case .opBatch(let b)? = try? codec.decode(frame) { sink &+= b.ops.count }
}
emit("op_batch_decode", ["messages_per_s": decodeRate, "mb_per_s": decodeRate * frameBytes / 1e6, "frame_bytes": frameBytes])

let message = TopGunMessage.opBatch(batch)
let encodeRate = measure { sink &+= codec.encode(message).count }
emit("op_batch_encode", ["messages_per_s": encodeRate, "mb_per_s": encodeRate * frameBytes / 1e6])

// LWW merge: each call merges a fresh newer record into one of 10k keys (Merkle included).
var map = LWWMap()
var tick: Int64 = 0
let keys = (0..<10_000).map { "key-\($0)" }
let mergeRate = measure(unitsPerCall: 100) {
    for i in 0..<100 {
        tick += 1
        map.merge(key: keys[Int(tick) % keys.count], record: LWWRecord(value: .int(tick), timestamp: Timestamp(millis: 1_700_000_000_000 + tick, counter: 0, nodeId: "n1")))
        sink &+= i
    }
}
emit("lww_merge", ["ops_per_s": mergeRate])

var tree = MerkleTree()
var hash: UInt32 = 1
// The tree keeps keys only; its owner knows each key's current entry hash.
var entryHashes = [UInt32?](repeating: nil, count: keys.count)
let merkleRate = measure(unitsPerCall: 100) {
    for _ in 0..<100 {
        hash = hash &* 1_664_525 &+ 1_013_904_223
        let index = Int(hash % 10_000)
        tree.update(key: keys[index], entryHash: hash, previous: entryHashes[index])
        entryHashes[index] = hash
    }
}
emit("merkle_update", ["ops_per_s": merkleRate])

if sink == 42 { print("") }  // keeps the optimiser from dropping the work
