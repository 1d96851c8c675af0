import BatchFrames
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TopGunCore
import TopGunWire

// Pieces the cluster subcommands (cluster-throughput, fill, failover) share: the partition
// map a client routes by, keys chosen by owner, and CPU readings of several processes.

/// The `PARTITION_MAP` a client of the dev tenant receives: for each client partition
/// (`fnv1a(key) % 271`) the index of its owner in `nodes`.
struct ClientPartitionMap: Sendable {
    var version: Int64
    /// Node ids, sorted.
    var nodes: [String]
    /// Node id → its WebSocket URL.
    var websocket: [String: String]
    /// Client partition → index in `nodes`.
    var owners: [UInt8]
    /// Client partition → its backups' node ids.
    var backups: [[String]]

    init(_ map: PartitionMap) throws {
        version = map.version
        var ids = Set(map.nodes.map(\.nodeId))
        for entry in map.partitions { ids.insert(entry.ownerNodeId) }
        nodes = ids.sorted()
        websocket = Dictionary(map.nodes.map { ($0.nodeId, $0.endpoints.websocket) }, uniquingKeysWith: { a, _ in a })
        owners = [UInt8](repeating: 0, count: PartitionFunction.partitionCount)
        backups = [[String]](repeating: [], count: PartitionFunction.partitionCount)
        guard map.partitions.count == PartitionFunction.partitionCount else {
            throw LoadError("PARTITION_MAP with \(map.partitions.count) partitions")
        }
        let index = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, $0) })
        for entry in map.partitions {
            owners[Int(entry.partitionId)] = UInt8(index[entry.ownerNodeId]!)
            backups[Int(entry.partitionId)] = entry.backupNodeIds
        }
    }

    func owner(ofKey key: String) -> String { nodes[Int(owners[PartitionFunction.clientPartition(forKey: key)])] }

    func partitionsOwned(by node: String) -> Int {
        guard let i = nodes.firstIndex(of: node) else { return 0 }
        return owners.filter { Int($0) == i }.count
    }
}

/// Follows the partition map on one connection: authenticates, sends
/// `PARTITION_MAP_REQUEST {currentVersion: 0}`, and hands every `PARTITION_MAP` it receives
/// (the first, then one per new table) to `onMap` with its receive time.
final class MapFollower: WSDriver, @unchecked Sendable {
    let auth: [UInt8]
    let onMap: @Sendable (PartitionMap, UInt64) -> Void
    let tally: Tally

    init(auth: [UInt8], tally: Tally, onMap: @escaping @Sendable (PartitionMap, UInt64) -> Void) {
        self.auth = auth
        self.tally = tally
        self.onMap = onMap
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck:
            connection.send(WireCodec().encode(.partitionMapRequest(PartitionMapRequest(currentVersion: 0))))
        case .authFail:
            tally.error("map follower: AUTH_FAIL")
        default:
            if case .partitionMap(let map)? = try? WireCodec().decode(Array(message.readableBytesView)) {
                onMap(map, receivedAt)
            }
        }
    }

    func closed(_ connection: WSConnection, error: String?) {
        tally.add("map_follower_closed")
    }
}

/// Fetches the current partition map through `url` (the connection stays open, following).
func fetchPartitionMap(group: any EventLoopGroup, url: String, token: String, tally: Tally) throws -> ClientPartitionMap {
    let box = Mutex<PartitionMap?>(nil)
    _ = try connect(group: group, endpoint: try Endpoint(url: url), source: nil, index: -1) {
        MapFollower(auth: authFrame(token: token), tally: tally) { map, _ in box.withLock { if $0 == nil { $0 = map } } }
    }.wait()
    guard wait(timeout: 20, { box.withLock { $0 != nil } }), let map = box.withLock({ $0 }) else {
        throw LoadError("no PARTITION_MAP from \(url) within 20 s (\(tally.firstErrors.withLock { $0 }))")
    }
    return try ClientPartitionMap(map)
}

/// FNV-1a (32 bits) over bytes, as `PartitionFunction.clientPartition` hashes a key's UTF-8.
@inline(__always) func fnv1a(_ state: UInt32, _ byte: UInt8) -> UInt32 { (state ^ UInt32(byte)) &* 16_777_619 }
let fnvOffsetBasis: UInt32 = 2_166_136_261

/// The `OP_BATCH` frames of one connection whose keys are chosen one by one: every put is a
/// new key `c<conn:5>-<seq:13>` (seq grows), and with a `target` only keys whose client
/// partition that node owns are used (the next seq that hashes there), so a cluster-aware
/// client sends each batch straight to its owner. Encoded once as `BatchFrames` does; per
/// batch only fixed-width digits (key, op id, HLC counter) are rewritten in place.
struct RoutedFrames {
    private(set) var bytes: [UInt8]
    let opsPerBatch: Int
    private var keyDigitOffsets: [Int] = []
    private var idDigitOffsets: [Int] = []
    private var counterOffsets: [Int] = []
    /// FNV state after the key's prefix `c<conn:5>-`.
    private let prefixHash: UInt32
    private let owners: [UInt8]
    private let target: UInt8?
    private(set) var seq = 0
    private static let counterBase = BatchFrames.counterBase

    init(connection: Int, opsPerBatch: Int, valueBytes: Int, mapName: String, writeConcern: WriteConcern?, nowMillis: Int64,
         owners: [UInt8], target: Int?) {
        precondition(opsPerBatch >= 1 && opsPerBatch <= 9999)
        self.opsPerBatch = opsPerBatch
        self.owners = owners
        self.target = target.map(UInt8.init)
        let prefix = "c\(String(connection).leftPadded(5))-"
        prefixHash = prefix.utf8.reduce(fnvOffsetBasis, fnv1a)
        let nodeId = "c7b1a0de-5e55-4a1e-9f0e-\(String(connection).leftPadded(12))"
        let value = valueOfSize(valueBytes)
        var ops: [ClientOp] = []
        for i in 0..<opsPerBatch {
            let suffix = String(i).leftPadded(4)
            let ts = Timestamp(millis: nowMillis, counter: Self.counterBase + Int64(i), nodeId: nodeId)
            ops.append(ClientOp(
                id: "000000000" + suffix, mapName: mapName, key: prefix + "000000000" + suffix,
                opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false))
        }
        bytes = clientStyleBytes(.opBatch(OpBatch(ops: ops, writeConcern: writeConcern)))
        var searchFrom = 0
        for op in ops {
            for (text, isKey) in [(op.id!, false), (op.key, true)] {
                let needle = [UInt8(0xa0 | text.utf8.count)] + Array(text.utf8)
                guard let at = bytes.firstIndex(of: needle) else { fatalError("template: \(text) not found") }
                if isKey { keyDigitOffsets.append(at + 1 + prefix.utf8.count) } else { idDigitOffsets.append(at + 1) }
            }
            let counter = UInt32(op.record!.timestamp.counter)
            let needle: [UInt8] = [0xce, UInt8(counter >> 24), UInt8((counter >> 16) & 0xff), UInt8((counter >> 8) & 0xff), UInt8(counter & 0xff)]
            for _ in 0..<2 {
                guard let at = bytes.firstIndex(of: needle, from: searchFrom) else { fatalError("template: counter \(counter) not found") }
                counterOffsets.append(at + 1)
                searchFrom = at + needle.count
            }
        }
        // The hash here must be the server's.
        var check = self
        check.stamp(batch: 0)
        for (i, offset) in check.keyDigitOffsets.enumerated() {
            let key = prefix + String(decoding: check.bytes[offset..<(offset + 13)], as: UTF8.self)
            let partition = PartitionFunction.clientPartition(forKey: key)
            if let target, owners[partition] != UInt8(target) { fatalError("key \(key) (op \(i)) is not owned by node \(target)") }
        }
    }

    /// The next key's 13 digits (and advances `seq`): the next one the target owns.
    private mutating func nextKey(_ digits: inout [UInt8]) {
        while true {
            seq += 1
            var n = seq
            for i in stride(from: 12, through: 0, by: -1) {
                digits[i] = 0x30 + UInt8(n % 10)
                n /= 10
            }
            guard let target else { return }
            var h = prefixHash
            for d in digits { h = fnv1a(h, d) }
            if owners[Int(h % UInt32(PartitionFunction.partitionCount))] == target { return }
        }
    }

    mutating func stamp(batch: Int) {
        var id = [UInt8](repeating: 0x30, count: 9)
        var n = batch % 1_000_000_000
        for i in stride(from: 8, through: 0, by: -1) {
            id[i] = 0x30 + UInt8(n % 10)
            n /= 10
        }
        var key = [UInt8](repeating: 0x30, count: 13)
        let opsPerBatch = self.opsPerBatch
        for offset in keyDigitOffsets {
            nextKey(&key)
            for i in 0..<13 { bytes[offset + i] = key[i] }
        }
        bytes.withUnsafeMutableBufferPointer { out in
            for offset in idDigitOffsets {
                for i in 0..<9 { out[offset + i] = id[i] }
            }
            BatchFrames.stampCounters(into: out, at: counterOffsets, batch: batch, opsPerBatch: opsPerBatch)
        }
    }
}

/// One connection of a cluster load: keeps up to `window` batches unacknowledged, each of
/// new keys (owned by the connection's node when routing by owner). With `maxBatches` it
/// stops after that many batches and finishes once all are acknowledged (a fill).
///
/// Acks are matched to batches by `lastId` (the batch number is in every op id). An `ERROR`
/// answers a batch refused whole (its partition's owner unreachable or not loaded, or its
/// acknowledgement wait failed); the server then acknowledges nothing later on the
/// connection until the client sends the refused batch again (an `OP_ACK` covers every
/// earlier op in the client's reading), so, as a client does, every unacknowledged batch is
/// sent again, oldest first, `resendDelay` after the first ERROR (the ERRORs of the batches
/// behind it arrive meanwhile). Writes are idempotent.
final class RoutedLoadDriver: WSDriver, @unchecked Sendable {
    var frames: RoutedFrames
    let auth: [UInt8]
    let window: Int
    let expected: WriteConcern?
    let maxBatches: Int?
    let tally: Tally
    let measuring: RunFlag
    let stopping: RunFlag
    let resendDelay: TimeAmount
    private var ready = false
    private var finished = false
    private var batch = 0
    /// Unacknowledged batches: number → (bytes, first send time).
    private var unacked: [Int: (bytes: [UInt8], sentAt: UInt64)] = [:]
    private var resendScheduled = false
    private var rtts: [UInt64] = []
    private var answers = 0

    init(frames: RoutedFrames, auth: [UInt8], window: Int, expected: WriteConcern?, maxBatches: Int? = nil, tally: Tally,
         measuring: RunFlag, stopping: RunFlag, resendDelay: TimeAmount = .milliseconds(100)) {
        self.frames = frames
        self.auth = auth
        self.window = window
        self.expected = expected
        self.maxBatches = maxBatches
        self.tally = tally
        self.measuring = measuring
        self.stopping = stopping
        self.resendDelay = resendDelay
        rtts.reserveCapacity(1 << 14)
    }

    var inFlight: Int { unacked.count }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck:
            if !ready {
                ready = true
                tally.add("ready")
                fill(connection)
            }
        case .authFail:
            tally.error("AUTH_FAIL")
            tally.add("closed_early")
            connection.close()
        case .opAck:
            let number = message.scan { s -> Int? in
                guard let at = s.lookup(path: ["payload", "lastId"]), let id = s.stringValue(at), id.utf8.count == 13 else { return nil }
                return Int(id.prefix(9))
            }
            guard let number, let entry = unacked.removeValue(forKey: number) else {
                tally.add("unmatched_acks")
                return
            }
            answers += 1
            if measuring.isSet && !stopping.isSet {
                tally.add("acked")
                rtts.append(receivedAt &- entry.sentAt)
            }
            if maxBatches != nil { tally.add("fill_acked_ops", frames.opsPerBatch) }
            if answers == 1 || answers % 64 == 0 { check(message) }
            fill(connection)
        case .error:
            tally.add("refused")
            if measuring.isSet && !stopping.isSet { tally.add("refused_measured") }
            tally.error(printable(message))
            scheduleResend(connection)
        case .opRejected:
            tally.error(printable(message))
        default:
            break
        }
    }

    private func scheduleResend(_ connection: WSConnection) {
        guard !resendScheduled, let loop = connection.context?.eventLoop else { return }
        resendScheduled = true
        loop.scheduleTask(in: resendDelay) { [self] in
            resendScheduled = false
            guard connection.isOpen else { return }
            for number in unacked.keys.sorted() {
                connection.send(unacked[number]!.bytes, flush: false)
                tally.add("resent")
            }
            connection.flush()
        }
    }

    /// Decodes an ack in full now and then: every op succeeded, at the level asked for.
    private func check(_ message: ByteBuffer) {
        tally.add("acks_checked")
        guard case .opAck(let ack)? = try? WireCodec().decode(Array(message.readableBytesView)) else {
            return tally.error("undecodable OP_ACK")
        }
        let results = ack.results ?? []
        if results.count != frames.opsPerBatch || results.contains(where: { !$0.success }) {
            tally.error("OP_ACK with \(results.count) results, \(results.filter { !$0.success }.count) failed: \(results.first(where: { !$0.success })?.error ?? "")")
        }
        let want: WriteConcern = expected == .replicated ? .applied : (expected ?? .persisted)
        if ack.achievedLevel != want {
            tally.error("OP_ACK at \(ack.achievedLevel?.rawValue ?? "nil"), expected \(want.rawValue)")
        }
    }

    private func fill(_ connection: WSConnection) {
        let done = stopping.isSet || (maxBatches.map { batch >= $0 } ?? false)
        if done {
            if inFlight == 0 { finish(connection) }
            return
        }
        // Nothing new while refused batches wait to be sent again.
        if resendScheduled { return }
        var sent = false
        while inFlight < window, maxBatches.map({ batch < $0 }) ?? true {
            frames.stamp(batch: batch)
            connection.send(frames.bytes, flush: false)
            unacked[batch] = (frames.bytes, monotonicNanos())
            batch += 1
            sent = true
        }
        if sent { connection.flush() }
    }

    private func finish(_ connection: WSConnection) {
        guard !finished else { return }
        finished = true
        tally.addSamples(rtts)
        rtts = []
        tally.add("finished")
        connection.close()
    }

    func closed(_ connection: WSConnection, error: String?) {
        if let error { tally.error(error) }
        if !ready { tally.add("closed_early") }
        if !finished {
            if ready && !stopping.isSet { tally.error("connection \(connection.index) closed during the run") }
            finished = true
            tally.addSamples(rtts)
            tally.add("finished")
        }
    }
}

/// CPU ticks (utime + stime) of a PostgreSQL cluster: the postmaster and its children, by pid.
func postgresTicks(_ postmaster: Int?) -> [Int: Int] {
    guard let postmaster else { return [:] }
    var result: [Int: Int] = [:]
    let children = (try? String(contentsOfFile: "/proc/\(postmaster)/task/\(postmaster)/children", encoding: .utf8))?
        .split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? []
    for pid in [postmaster] + children {
        if let ticks = processTicks(pid) { result[pid] = ticks }
    }
    return result
}

/// CPU seconds a PostgreSQL cluster used between two readings: processes in both count their
/// difference, processes started in between all their time (those that ended in between are
/// missed; the nodes' pools keep their connections, so there are none in practice).
func postgresSeconds(_ before: [Int: Int], _ after: [Int: Int]) -> Double {
    var ticks = 0
    for (pid, value) in after { ticks += value - (before[pid] ?? 0) }
    return Double(ticks) / 100
}

func parseList(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}
