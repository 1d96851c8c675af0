import BatchFrames
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TopGunCore
import TopGunWire

/// `tenants`: the noisy-neighbour benchmark of issue 5 (Deliver 8). Tenant B writes single-op
/// `OP_BATCH`es at a fixed rate on one connection and measures write-to-ack latency; tenant A,
/// whose `max_operations_per_second` quota is far below what it sends, floods over a few
/// connections. One run, three phases of `--duration` seconds each, every one after a
/// `--settle` period that is not measured:
///
///   1. `unloaded`: B alone;
///   2. `loaded`: B while A floods;
///   3. `unloaded_after`: B alone again (a control for drift on a shared machine).
///
/// A ignores `retryAfterMs` (a hostile or broken client) but obeys the protocol's rule that a
/// connection whose batch was refused (`ERROR` 429) must send those ops again before anything
/// else: each tick of a connection sends its oldest refused batch again (same op ids, same
/// keys) if it has one, else a new batch. A's batches ask for APPLIED, so a connection's acks
/// and refusals arrive in the order of its batches (a PERSISTED ack may wait in the session's
/// ack pipeline while a later refusal overtakes it). B sends at a fixed rate whatever the acks
/// (open loop), so a slow ack cannot hide the writes behind it.
///
/// B and A run on event-loop groups of their own (one thread each), so A's sending never
/// delays B's send or receive timestamps. Prints one JSON line.
struct Tenants: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Noisy neighbours: tenant B's write-to-ack latency alone and while tenant A floods past its quota.")

    @Option(help: "B's node (and A's, without --a-url).") var url: String
    @Option(name: .customLong("a-url"), help: "A node for A's connections (repeatable: A's connections go round-robin over them).")
    var aURLs: [String] = []
    @Option(name: .customLong("token-a"), help: "App JWT of the flooding tenant A.") var tokenA: String
    @Option(name: .customLong("token-b"), help: "App JWT of the measured tenant B.") var tokenB: String
    @Option(help: "Measured seconds of each phase.") var duration: Double = 20
    @Option(help: "Unmeasured seconds before each phase.") var settle: Double = 3
    @Option(name: .customLong("a-connections")) var aConnections: Int = 4
    @Option(name: .customLong("a-batches-per-second"), help: "A's batches per second over all its connections.") var aBatchesPerSecond: Double = 100
    @Option(name: .customLong("a-ops-per-batch")) var aOpsPerBatch: Int = 100
    @Option(name: .customLong("b-writes-per-second")) var bWritesPerSecond: Double = 100
    @Option(name: .customLong("b-write-concern"), help: "NONE (the client's default: acked at PERSISTED), APPLIED, ...") var bWriteConcern: String = "NONE"
    @Option(name: .customLong("value-bytes")) var valueBytes: Int = 64
    @Option(name: .customLong("server-pid"), help: "Report this process's CPU use in each phase.") var serverPid: Int?

    func run() throws {
        let bConcern: WriteConcern?
        if bWriteConcern.uppercased() == "NONE" {
            bConcern = nil
        } else {
            guard let c = WriteConcern(rawValue: bWriteConcern.uppercased()) else { throw ValidationError("unknown write concern \(bWriteConcern)") }
            bConcern = c
        }
        let endpoint = try Endpoint(url: url)
        let aEndpoints = try (aURLs.isEmpty ? [url] : aURLs).map { try Endpoint(url: $0) }
        let groupB = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let groupA = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let phase = PhaseFlag()
        let tally = Tally()
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)

        // B: one writer.
        let writerBox = Mutex<NeighbourWriter?>(nil)
        let (authB, valueBytes) = (authFrame(token: tokenB), self.valueBytes)
        let writerChannel = try connect(group: groupB, endpoint: endpoint, source: nil, index: -1) {
            let writer = NeighbourWriter(auth: authB, concern: bConcern, valueBytes: valueBytes, phase: phase, tally: tally)
            writerBox.withLock { $0 = writer }
            return writer
        }.wait()
        guard wait(timeout: 10, { tally.count("b_ready") == 1 }), let writer = writerBox.withLock({ $0 }) else {
            throw LoadError("B's writer did not authenticate: \(tally.firstErrors.withLock { $0 })")
        }
        let bInterval = TimeAmount.nanoseconds(Int64(1e9 / bWritesPerSecond))
        let bTask = writerChannel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: bInterval) { _ in writer.write() }

        var figures: [String: PhaseFigures] = [:]
        func measure(_ name: String, _ number: Int) {
            sleep(seconds: settle)
            let before = tally.counters.withLock { $0 }
            let serverBefore = processTicks(serverPid), selfBefore = processTicks(Int(getpid()))
            let start = Date()
            phase.set(number)
            sleep(seconds: duration)
            phase.set(0)
            let elapsed = Date().timeIntervalSince(start)
            let after = tally.counters.withLock { $0 }
            func delta(_ key: String) -> Int { (after[key] ?? 0) - (before[key] ?? 0) }
            figures[name] = PhaseFigures(
                seconds: elapsed,
                serverCores: coresUsed(serverBefore, processTicks(serverPid), seconds: elapsed),
                generatorCores: coresUsed(selfBefore, processTicks(Int(getpid())), seconds: elapsed),
                bSent: delta("b_sent_\(number)"),
                aOfferedBatches: delta("a_sent"), aResentBatches: delta("a_resent"), aAckedBatches: delta("a_acked"),
                aRefusedBatches: delta("a_refused_429_ops_per_second"), aOtherErrors: delta("a_other_errors"))
            log("tenants: phase \(name) done: B sent \(figures[name]!.bSent), A acked \(figures[name]!.aAckedBatches) batches, refused \(figures[name]!.aRefusedBatches)")
        }

        measure("unloaded", 1)

        // A: the flood.
        let authA = authFrame(token: tokenA)
        let (aOpsPerBatch, aConnections) = (self.aOpsPerBatch, self.aConnections)
        let flooders = Mutex<[FloodDriver]>([])
        var floodChannels: [any Channel] = []
        for index in 0..<aConnections {
            let channel = try connect(group: groupA, endpoint: aEndpoints[index % aEndpoints.count], source: nil, index: index) {
                let frames = BatchFrames(connection: index, opsPerBatch: aOpsPerBatch, valueBytes: valueBytes, mapName: "flood", writeConcern: .applied, nowMillis: nowMillis)
                let driver = FloodDriver(frames: frames, auth: authA, tally: tally)
                flooders.withLock { $0.append(driver) }
                return driver
            }.wait()
            floodChannels.append(channel)
        }
        guard wait(timeout: 10, { tally.count("a_ready") == aConnections }) else {
            throw LoadError("only \(tally.count("a_ready")) of A's \(aConnections) connections authenticated: \(tally.firstErrors.withLock { $0 })")
        }
        let drivers = flooders.withLock { $0 }
        let perConnection = TimeAmount.nanoseconds(Int64(1e9 * Double(aConnections) / aBatchesPerSecond))
        var floodTasks: [RepeatedTask] = []
        for (index, driver) in drivers.enumerated() {
            // Stagger the connections over one period.
            let offset = TimeAmount.nanoseconds(perConnection.nanoseconds * Int64(index) / Int64(aConnections))
            floodTasks.append(floodChannels[index].eventLoop.scheduleRepeatedTask(initialDelay: offset, delay: perConnection) { _ in driver.tick() })
        }
        measure("loaded", 2)
        for task in floodTasks { task.cancel() }
        sleep(seconds: 0.5)
        for driver in drivers { floodChannels[0].eventLoop.execute { driver.close() } }

        measure("unloaded_after", 3)
        bTask.cancel()
        sleep(seconds: 1)

        let samples = (1...3).map { number in writer.samples(phase: number) }
        let unloaded = figures["unloaded"]!, loaded = figures["loaded"]!, after = figures["unloaded_after"]!
        let unloadedP99 = percentileMs(samples[0], 0.99)
        let loadedP99 = percentileMs(samples[1], 0.99)
        let bound = max(2 * unloadedP99, unloadedP99 + 5)
        let missing = (1...3).map { figures[["unloaded", "loaded", "unloaded_after"][$0 - 1]]!.bSent - samples[$0 - 1].count }
        emit([
            "figure": "noisy_neighbours", "duration_s": duration,
            "b_writes_per_s": bWritesPerSecond, "b_write_concern": bConcern?.rawValue ?? "NONE (acked at PERSISTED)",
            "b_unloaded_acks": samples[0].count, "b_unloaded_p50_ms": percentileMs(samples[0], 0.5), "b_unloaded_p99_ms": unloadedP99,
            "b_unloaded_max_ms": samples[0].last.map { Double($0) / 1e6 } ?? .nan,
            "b_loaded_acks": samples[1].count, "b_loaded_p50_ms": percentileMs(samples[1], 0.5), "b_loaded_p99_ms": loadedP99,
            "b_loaded_max_ms": samples[1].last.map { Double($0) / 1e6 } ?? .nan,
            "b_after_acks": samples[2].count, "b_after_p50_ms": percentileMs(samples[2], 0.5), "b_after_p99_ms": percentileMs(samples[2], 0.99),
            "b_unacked": missing.reduce(0, +), "b_errors": tally.count("b_errors"),
            "goal_p99_bound_ms": bound, "goal_met": loadedP99 <= bound,
            "a_connections": aConnections, "a_nodes": aEndpoints.count, "a_ops_per_batch": aOpsPerBatch,
            "a_offered_ops_per_s": Double(loaded.aOfferedBatches * aOpsPerBatch) / loaded.seconds,
            "a_resent_batches": loaded.aResentBatches,
            "a_accepted_ops_per_s": Double(loaded.aAckedBatches * aOpsPerBatch) / loaded.seconds,
            "a_acked_batches": loaded.aAckedBatches, "a_refused_batches_429": loaded.aRefusedBatches,
            "a_other_errors": loaded.aOtherErrors,
            "server_cores_unloaded": unloaded.serverCores, "server_cores_loaded": loaded.serverCores, "server_cores_after": after.serverCores,
            "generator_cores_loaded": loaded.generatorCores,
            "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? groupA.syncShutdownGracefully()
        try? groupB.syncShutdownGracefully()
    }
}

struct PhaseFigures {
    var seconds: Double
    var serverCores: Double
    var generatorCores: Double
    var bSent: Int
    var aOfferedBatches: Int
    var aResentBatches: Int
    var aAckedBatches: Int
    var aRefusedBatches: Int
    var aOtherErrors: Int
}

/// The phase being measured (0 = none), set by the main thread, read on event loops.
final class PhaseFlag: Sendable {
    private let value = Atomic<Int>(0)
    var current: Int { value.load(ordering: .relaxed) }
    func set(_ phase: Int) { value.store(phase, ordering: .relaxed) }
}

/// Tenant B's writer: one put per tick, op id = sequence number, key `b-<seq>`. A write
/// belongs to the phase in force when it was sent; its latency is ack receipt - send time.
final class NeighbourWriter: WSDriver, @unchecked Sendable {
    let auth: [UInt8]
    let concern: WriteConcern?
    let phase: PhaseFlag
    let tally: Tally
    let value: DataValue
    private var connection: WSConnection?
    private var ready = false
    private var seq = 0
    /// seq -> (phase, send time)
    private var inFlight: [Int: (Int, UInt64)] = [:]
    private let latencies = Mutex<[[UInt64]]>([[], [], [], []])
    private let nodeId = "tenant-b-" + UUIDString.make()

    init(auth: [UInt8], concern: WriteConcern?, valueBytes: Int, phase: PhaseFlag, tally: Tally) {
        self.auth = auth
        self.concern = concern
        self.phase = phase
        self.tally = tally
        value = valueOfSize(valueBytes)
    }

    func opened(_ connection: WSConnection) {
        self.connection = connection
        connection.send(auth)
    }

    func write() {
        guard ready, let connection, connection.isOpen else { return }
        seq += 1
        let ts = Timestamp(millis: Int64(Date().timeIntervalSince1970 * 1000), counter: 0, nodeId: nodeId)
        let op = ClientOp(id: String(seq), mapName: "neighbour", key: "b-\(seq)", opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false)
        let bytes = clientStyleBytes(.opBatch(OpBatch(ops: [op], writeConcern: concern)))
        let current = phase.current
        let now = monotonicNanos()
        connection.send(bytes)
        inFlight[seq] = (current, now)
        if current > 0 { tally.add("b_sent_\(current)") }
    }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck:
            if !ready {
                ready = true
                tally.add("b_ready")
            }
        case .opAck:
            let lastId = message.scan { s in s.lookup(path: ["payload", "lastId"]).flatMap(s.stringValue) }
            guard let id = lastId.flatMap({ Int($0) }), let (p, sentAt) = inFlight.removeValue(forKey: id) else {
                tally.add("b_errors")
                return tally.error("B: OP_ACK for an unknown op \(lastId ?? "nil")")
            }
            if p > 0 { latencies.withLock { $0[p].append(receivedAt &- sentAt) } }
        case .error, .opRejected, .authFail:
            tally.add("b_errors")
            tally.error("B: " + printable(message))
        default:
            break
        }
    }

    func samples(phase: Int) -> [UInt64] { latencies.withLock { $0[phase].sorted() } }

    func closed(_ connection: WSConnection, error: String?) {
        tally.add("b_errors")
        tally.error("B's connection closed: \(error ?? "")")
    }
}

/// One of tenant A's flooding connections. `tick()` sends a batch: the oldest refused one
/// again if there is one (the server refuses anything else on this connection until then),
/// else a new one. Counts only while a phase is measured.
final class FloodDriver: WSDriver, @unchecked Sendable {
    var frames: BatchFrames
    let auth: [UInt8]
    let tally: Tally
    private var connection: WSConnection?
    private var nextBatch = 0
    /// Batches sent and not yet answered, in sending order.
    private var inFlight: [Int] = []
    /// Refused batches to send again, in batch order.
    private var refused: [Int] = []

    init(frames: BatchFrames, auth: [UInt8], tally: Tally) {
        self.frames = frames
        self.auth = auth
        self.tally = tally
    }

    func opened(_ connection: WSConnection) {
        self.connection = connection
        connection.send(auth)
    }

    func tick() {
        guard let connection, connection.isOpen else { return }
        let batch: Int
        if refused.isEmpty {
            batch = nextBatch
            nextBatch += 1
        } else {
            batch = refused.removeFirst()
            tally.add("a_resent")
        }
        frames.stamp(batch: batch)
        connection.send(frames.bytes)
        inFlight.append(batch)
        tally.add("a_sent")
    }

    func close() { connection?.close() }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck:
            tally.add("a_ready")
        case .opAck:
            // lastId = <batch:9><op:4>
            let lastId = message.scan { s in s.lookup(path: ["payload", "lastId"]).flatMap(s.stringValue) }
            guard let id = lastId.flatMap({ Int($0) }), let at = inFlight.firstIndex(of: id / 10_000) else {
                tally.add("a_other_errors")
                return tally.error("A: OP_ACK for an unknown batch \(lastId ?? "nil")")
            }
            inFlight.remove(at: at)
            tally.add("a_acked")
        case .error:
            let (code, opsQuota) = message.scan { s in
                (s.lookup(path: ["payload", "code"]).flatMap(s.int),
                 s.lookup(path: ["payload", "details", "quota"]).map { s.stringEquals($0, "max_operations_per_second") } ?? false)
            }
            guard code == 429, opsQuota, !inFlight.isEmpty else {
                tally.add("a_other_errors")
                return tally.error("A: " + printable(message))
            }
            // Answers come in batch order (APPLIED acks are not queued): the oldest open batch.
            let batch = inFlight.removeFirst()
            let position = refused.firstIndex(where: { $0 > batch }) ?? refused.endIndex
            refused.insert(batch, at: position)
            tally.add("a_refused_429_ops_per_second")
        case .opRejected, .authFail:
            tally.add("a_other_errors")
            tally.error("A: " + printable(message))
        default:
            break
        }
    }

    func closed(_ connection: WSConnection, error: String?) {
        if let error { tally.error("A's connection \(connection.index) closed: \(error)") }
    }
}

func printable(_ message: ByteBuffer) -> String {
    String(decoding: message.readableBytesView.prefix(240).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self)
}
