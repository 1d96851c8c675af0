import BatchFrames
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import TopGunWire

/// `throughput`: N connections, each keeping up to `window` OP_BATCH frames unacknowledged;
/// counts acknowledged batches (round trips) per second. Against the echo server
/// (`--echo`) the same frames are sent without the handshake and every echo counts.
struct Throughput: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "OP_BATCH round trips per second over many connections.")

    @Option(help: "ws:// URL of the node (or of the echo server with --echo).") var url: String
    @Option(help: "App JWT (not needed with --echo).") var token: String = ""
    @Flag(help: "The peer is the echo server: no handshake, every echoed frame is a round trip.") var echo = false
    @Option var connections: Int = 50
    @Option(name: .customLong("ops-per-batch")) var opsPerBatch: Int = 100
    @Option(name: .customLong("value-bytes")) var valueBytes: Int = 64
    @Option(help: "Measured seconds (after the warm-up).") var duration: Double = 15
    @Option(help: "Seconds of load before measuring.") var warmup: Double = 3
    @Option(help: "Batches in flight per connection.") var window: Int = 4
    @Option(name: .customLong("write-concern"), help: "FIRE_AND_FORGET, APPLIED, PERSISTED, ... or NONE (the client's default, acked at PERSISTED).")
    var writeConcern: String = "APPLIED"
    @Option(name: .customLong("map-name")) var mapName: String = "bench"
    @Option(help: "Spread connections over this many maps (map-name-0 ...); 1 = one map.") var maps: Int = 1
    @Option(name: .customLong("key-space"), help: "Batches after which a connection writes its keys again (newer values of the same keys); 0 = every put a new key.")
    var keySpace: Int = 0
    @Option(help: "Event-loop threads of the generator.") var threads: Int = 2
    @Option(help: "Label of the figure in the JSON line.") var label: String = "topgun"
    @Option(name: .customLong("server-pid"), help: "Report this process's CPU use during the measured window.") var serverPid: Int?

    func run() throws {
        let concern: WriteConcern?
        if writeConcern.uppercased() == "NONE" {
            concern = nil
        } else {
            guard let c = WriteConcern(rawValue: writeConcern.uppercased()) else { throw ValidationError("unknown write concern \(writeConcern)") }
            concern = c
        }
        guard echo || !token.isEmpty else { throw ValidationError("--token is required unless --echo") }
        let endpoint = try Endpoint(url: url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let measuring = RunFlag()
        let stopping = RunFlag()
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        let auth = authFrame(token: token)
        let (echo, window, opsPerBatch, valueBytes, maps, mapName) = (self.echo, self.window, self.opsPerBatch, self.valueBytes, self.maps, self.mapName)
        let keySpace = self.keySpace > 0 ? self.keySpace : nil
        let frameBytes = BatchFrames(connection: 0, opsPerBatch: opsPerBatch, valueBytes: valueBytes, mapName: maps > 1 ? "\(mapName)-0" : mapName, writeConcern: concern, nowMillis: nowMillis).bytes.count

        openConnections(
            count: connections, concurrency: 64, sources: 1, group: group, endpoint: endpoint, tally: tally,
            settledCount: { tally.count("ready") + tally.count("connect_failed") + tally.count("closed_early") }
        ) { index in
            let frames = BatchFrames(
                connection: index, opsPerBatch: opsPerBatch, valueBytes: valueBytes,
                mapName: maps > 1 ? "\(mapName)-\(index % maps)" : mapName, writeConcern: concern, nowMillis: nowMillis, keySpace: keySpace)
            return ThroughputDriver(frames: frames, auth: echo ? nil : auth, window: window, expected: concern, tally: tally, measuring: measuring, stopping: stopping)
        }
        guard wait(timeout: 30, { tally.count("ready") + tally.count("connect_failed") + tally.count("closed_early") >= connections }) else {
            throw LoadError("only \(tally.count("ready")) of \(connections) connections became ready")
        }
        let ready = tally.count("ready")
        log("\(label): \(ready) connections sending \(frameBytes)-byte frames, window \(window), concern \(concern?.rawValue ?? "none")")
        sleep(seconds: warmup)
        measuring.set()
        let ackedBefore = tally.count("acked")
        let start = Date()
        let serverBefore = processTicks(serverPid), selfBefore = processTicks(Int(getpid()))
        sleep(seconds: duration)
        let acked = tally.count("acked") - ackedBefore
        let elapsed = Date().timeIntervalSince(start)
        let serverCores = coresUsed(serverBefore, processTicks(serverPid), seconds: elapsed)
        let generatorCores = coresUsed(selfBefore, processTicks(Int(getpid())), seconds: elapsed)
        stopping.set()
        wait(timeout: 15) { tally.count("finished") >= ready }
        let rtts = tally.samples.withLock { $0.sorted() }
        let batchesPerSecond = Double(acked) / elapsed
        emit([
            "figure": "throughput", "target": label, "write_concern": echo ? "ECHO" : (concern?.rawValue ?? "NONE"),
            "connections": ready, "ops_per_batch": opsPerBatch, "value_bytes": valueBytes, "frame_bytes": frameBytes,
            "window": window, "maps": maps, "key_space_batches": self.keySpace, "duration_s": elapsed,
            "batches_per_s": batchesPerSecond, "puts_per_s": echo ? 0.0 : batchesPerSecond * Double(opsPerBatch),
            "rtt_p50_ms": percentileMs(rtts, 0.5), "rtt_p99_ms": percentileMs(rtts, 0.99),
            "server_cores": serverCores, "generator_cores": generatorCores,
            "errors": tally.count("errors"), "acks_checked": tally.count("acks_checked"),
            "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? group.syncShutdownGracefully()
    }
}

final class ThroughputDriver: WSDriver, @unchecked Sendable {
    var frames: BatchFrames
    let auth: [UInt8]?
    let window: Int
    let expected: WriteConcern?
    let tally: Tally
    let measuring: RunFlag
    let stopping: RunFlag
    private var ready = false
    private var finished = false
    private var batch = 0
    private var sendTimes: [UInt64] = []
    private var sendHead = 0
    private var rtts: [UInt64] = []
    private var acks = 0

    init(frames: BatchFrames, auth: [UInt8]?, window: Int, expected: WriteConcern?, tally: Tally, measuring: RunFlag, stopping: RunFlag) {
        self.frames = frames
        self.auth = auth
        self.window = window
        self.expected = expected
        self.tally = tally
        self.measuring = measuring
        self.stopping = stopping
        rtts.reserveCapacity(1 << 16)
    }

    var inFlight: Int { sendTimes.count - sendHead }

    func opened(_ connection: WSConnection) {
        if let auth {
            connection.send(auth)
        } else {
            becomeReady(connection)
        }
    }

    private func becomeReady(_ connection: WSConnection) {
        ready = true
        tally.add("ready")
        fill(connection)
    }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        let kind: InboundKind = auth == nil ? .opAck : message.scan(inboundKind)
        switch kind {
        case .authAck:
            if !ready { becomeReady(connection) }
        case .authFail:
            tally.error("AUTH_FAIL: \(message.scan { s in s.lookup(path: ["payload", "error"]).flatMap(s.stringValue) ?? "" })")
            tally.add("closed_early")
            connection.close()
        case .opAck:
            guard inFlight > 0 else { return tally.error("unexpected OP_ACK") }
            let sentAt = sendTimes[sendHead]
            sendHead += 1
            if sendHead > 1024 {
                sendTimes.removeFirst(sendHead)
                sendHead = 0
            }
            acks += 1
            if measuring.isSet && !stopping.isSet {
                tally.add("acked")
                rtts.append(receivedAt &- sentAt)
            }
            if auth != nil, acks == 1 || acks % 64 == 0 { check(message) }
            fill(connection)
        case .error, .opRejected:
            tally.error(String(decoding: message.readableBytesView.prefix(300).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default:
            break
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
        if stopping.isSet {
            if inFlight == 0 { finish(connection) }
            return
        }
        var sent = false
        while inFlight < window {
            frames.stamp(batch: batch)
            batch += 1
            connection.send(frames.bytes, flush: false)
            sendTimes.append(monotonicNanos())
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
