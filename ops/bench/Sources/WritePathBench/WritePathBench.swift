import BatchFrames
import DataPlane
import Foundation
import Tenancy
import TopGunCore
import TopGunWire

// The node's CPU per OP_BATCH without sockets: the same frames as `TopGunLoad throughput
// --key-space 100` (50 connections, 100 puts of 64-byte values, a working set of 500,000
// keys), each decoded, applied to the map's store, journaled and answered with its OP_ACK
// in this one process and thread. What the throughput figure adds on top of this is the
// network stack (WebSocket, syscalls, task switches); this figure moves only with the
// write path's own code, and much less with the machine's noise.
//
// Usage: WritePathBench [seconds] [new]   prints one JSON line; `new`: every put a new key
// (what an initial load looks like) instead of the working set.

@main
enum WritePathBench {
    static func main() async {
        let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 5 : 5
        let newKeys = CommandLine.arguments.dropFirst(2).first == "new"
        let connections = 50, keySpace: Int? = newKeys ? nil : 100, opsPerBatch = 100
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        var frames = (0..<connections).map {
            BatchFrames(
                connection: $0, opsPerBatch: opsPerBatch, valueBytes: 64, mapName: "bench", writeConcern: .applied, nowMillis: nowMillis,
                keySpace: keySpace)
        }
        let tenant = TenantID("bench")
        let clock = NodeClock(nodeId: "bench-node")
        let store = MapStore(tenant: tenant, name: "bench", clock: clock)
        let journal = EventJournal(nodeId: "bench-node")
        let codec = WireCodec()
        // One per connection, as each connection of the node keeps its own.
        var repeated = [RepeatedStrings](repeating: RepeatedStrings(), count: connections)
        var ackBytes = 0
        var batch = 0

        func round() async {
            for connection in 0..<connections {
                frames[connection].stamp(batch: batch)
                let message = frames[connection].bytes.withUnsafeBufferPointer { try? codec.decode(contiguous: $0, repeated: &repeated[connection]) }
                guard case .opBatch(let opBatch)? = message else { fatalError("the benchmark frame does not decode") }
                let result = await store.apply(opBatch.ops, writer: nil, nowMillis: nowMillis, collectingRecords: false)
                journal.append(result.journal, mapName: "bench", tenant: tenant)
                let results = opBatch.ops.indices.map { OpResult(opId: opBatch.ops[$0].id ?? String($0), success: result.outcomes[$0].success, achievedLevel: .applied) }
                ackBytes &+= codec.encode(.opAck(OpAck(lastId: opBatch.ops.last?.id ?? "", achievedLevel: .applied, results: results))).count
            }
            batch += 1
        }

        // Fill the working set first, so every measured put replaces a record.
        for _ in 0..<(keySpace ?? 0) { await round() }
        let records = await store.recordCount
        guard newKeys || records == connections * (keySpace ?? 0) * opsPerBatch else { fatalError("expected a full working set, have \(records) records") }

        // Best of five rounds of `seconds / 5`: the round least disturbed by the machine.
        var best = 0.0
        let clockNow = ContinuousClock()
        for _ in 0..<5 {
            let start = clockNow.now
            var batches = 0
            var elapsed = 0.0
            repeat {
                await round()
                batches += connections
                let d = clockNow.now - start
                elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            } while elapsed < seconds / 5
            best = max(best, Double(batches) / elapsed)
        }
        let line = String(
            format: "{\"figure\": \"write_path_in_process\", \"keys\": \"\(newKeys ? "new" : "working set")\", \"batches_per_s\": %.1f, \"us_per_batch\": %.1f, \"puts_per_s\": %.1f, \"records\": %d, \"ack_bytes\": %d}",
            best, 1e6 / best, best * Double(opsPerBatch), records, ackBytes / max(1, batch * connections))
        print(line)
    }
}
