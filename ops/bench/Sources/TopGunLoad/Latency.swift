import BatchFrames
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TopGunCore
import TopGunWire

/// `latency`: many subscriber connections with a live query (`QUERY_SUB`, empty query) on
/// one map, and one writer connection putting at a fixed rate with its send time inside
/// the value. Each subscriber gets a `SERVER_EVENT` and a `QUERY_UPDATE` per write; the first
/// of the two counts. Latency = subscriber's receive time - writer's send time (one process,
/// one monotonic clock).
struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write-to-subscriber delivery latency with many live queries.")

    @Option var url: String
    @Option var token: String
    @Option var subscribers: Int = 1000
    @Option(name: .customLong("writes-per-second")) var writesPerSecond: Double = 20
    @Option var duration: Double = 20
    @Option(name: .customLong("map-name")) var mapName: String = "latency"
    @Option var threads: Int = 2
    @Option(help: "Handshakes in flight while connecting.") var concurrency: Int = 100
    @Option(name: .customLong("server-pid"), help: "Report this process's CPU use while writing.") var serverPid: Int?

    func run() throws {
        let endpoint = try Endpoint(url: url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let auth = authFrame(token: token)
        let maxWrites = Int(duration * writesPerSecond) + 16
        let mapName = self.mapName
        let (duration, writesPerSecond) = (self.duration, self.writesPerSecond)
        let connectStart = Date()
        openConnections(
            count: subscribers, concurrency: concurrency, sources: 1, group: group, endpoint: endpoint, tally: tally,
            settledCount: { tally.count("subscribed") + tally.count("connect_failed") + tally.count("closed_early") }
        ) { index in
            SubscriberDriver(index: index, auth: auth, mapName: mapName, maxWrites: maxWrites, plannedWrites: max(1, Int(duration * writesPerSecond)), tally: tally)
        }
        guard wait(timeout: 60, { tally.count("subscribed") + tally.count("connect_failed") + tally.count("closed_early") >= subscribers }) else {
            throw LoadError("only \(tally.count("subscribed")) of \(subscribers) subscribers ready")
        }
        let subscribed = tally.count("subscribed")
        log("latency: \(subscribed) subscribers ready in \(String(format: "%.1f", Date().timeIntervalSince(connectStart))) s")

        let writerBox = Mutex<WriterDriver?>(nil)
        let writerChannel = try connect(group: group, endpoint: endpoint, source: nil, index: -1) {
            let writer = WriterDriver(auth: auth, mapName: mapName, tally: tally)
            writerBox.withLock { $0 = writer }
            return writer
        }.wait()
        guard wait(timeout: 10, { tally.count("writer_ready") == 1 }), let writer = writerBox.withLock({ $0 }) else {
            throw LoadError("writer did not authenticate")
        }
        sleep(seconds: 1)
        let interval = TimeAmount.nanoseconds(Int64(1e9 / writesPerSecond))
        let total = Int(duration * writesPerSecond)
        let start = Date()
        let serverBefore = processTicks(serverPid), selfBefore = processTicks(Int(getpid()))
        let task = writerChannel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
            if writer.written >= total { task.cancel(); return }
            writer.write()
        }
        wait(timeout: duration + 30) { tally.count("written") >= total }
        task.cancel()
        let elapsed = Date().timeIntervalSince(start)
        let serverCores = coresUsed(serverBefore, processTicks(serverPid), seconds: elapsed)
        let generatorCores = coresUsed(selfBefore, processTicks(Int(getpid())), seconds: elapsed)
        // Let the last deliveries arrive.
        let expected = tally.count("written") * subscribed
        wait(timeout: 5) { tally.count("delivered") >= expected }
        sleep(seconds: 0.5)
        let samples = tally.samples.withLock { $0.sorted() }
        let updateSamples = tally.otherSamples.withLock { $0.sorted() }
        let quarterP99 = tally.quarters.withLock { $0.map { q in (percentileMs(q.sorted(), 0.99) * 10).rounded() / 10 } }
        emit([
            "figure": "latency", "subscribers": subscribed, "writes": tally.count("written"),
            "writes_per_s": writesPerSecond, "deliveries": samples.count, "expected_deliveries": expected,
            "first_via_server_event": tally.count("first_event"), "first_via_query_update": tally.count("first_update"),
            "p50_ms": percentileMs(samples, 0.5), "p90_ms": percentileMs(samples, 0.9), "p99_ms": percentileMs(samples, 0.99),
            "max_ms": samples.last.map { Double($0) / 1e6 } ?? .nan,
            "p99_ms_by_quarter_of_run": quarterP99.map { String($0) },
            // The QUERY_UPDATE changes what the subscriber's live query shows: the latency a user feels.
            "query_updates": updateSamples.count, "query_update_p50_ms": percentileMs(updateSamples, 0.5),
            "query_update_p99_ms": percentileMs(updateSamples, 0.99),
            "query_update_max_ms": updateSamples.last.map { Double($0) / 1e6 } ?? .nan,
            "writer_ack_p50_ms": percentileMs(writer.ackSamples(), 0.5),
            "server_cores": serverCores, "generator_cores": generatorCores,
            "errors": tally.count("errors"), "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? group.syncShutdownGracefully()
    }
}

/// A subscriber: AUTH, QUERY_SUB on the map, then the first delivery of each write.
final class SubscriberDriver: WSDriver, @unchecked Sendable {
    let index: Int
    let auth: [UInt8]
    let mapName: String
    let tally: Tally
    private var seen: [Bool]
    private var seenUpdate: [Bool]
    private var subscribed = false
    private var failed = false
    let plannedWrites: Int

    init(index: Int, auth: [UInt8], mapName: String, maxWrites: Int, plannedWrites: Int, tally: Tally) {
        self.plannedWrites = plannedWrites
        self.index = index
        self.auth = auth
        self.mapName = mapName
        self.tally = tally
        seen = [Bool](repeating: false, count: maxWrites)
        seenUpdate = [Bool](repeating: false, count: maxWrites)
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        let parsed: (kind: InboundKind, seq: Int?, sentNs: Int64?) = message.scan { s in
            let kind = inboundKind(s)
            switch kind {
            case .serverEvent:
                let key = s.lookup(path: ["payload", "key"]).flatMap(s.stringValue)
                let sent = s.lookup(path: ["payload", "record", "value", "sentNs"]).flatMap(s.int)
                return (kind, key.flatMap(Self.seq), sent)
            case .queryUpdate:
                let key = s.lookup(path: ["payload", "key"]).flatMap(s.stringValue)
                let sent = s.lookup(path: ["payload", "value", "sentNs"]).flatMap(s.int)
                return (kind, key.flatMap(Self.seq), sent)
            default:
                return (kind, nil, nil)
            }
        }
        switch parsed.kind {
        case .authAck:
            let sub = QuerySub(queryId: "q\(index)", mapName: mapName, query: Query())
            connection.send(WireCodec().encode(.querySub(sub)))
        case .queryResp:
            if !subscribed {
                subscribed = true
                tally.add("subscribed")
            }
        case .serverEvent, .queryUpdate:
            guard let seq = parsed.seq, let sent = parsed.sentNs, seq >= 0, seq < seen.count else {
                return tally.error("delivery without seq/sentNs")
            }
            if parsed.kind == .queryUpdate, !seenUpdate[seq] {
                seenUpdate[seq] = true
                tally.otherSamples.withLock { $0.append(receivedAt &- UInt64(sent)) }
            }
            if seen[seq] { return }
            seen[seq] = true
            tally.add(parsed.kind == .serverEvent ? "first_event" : "first_update")
            tally.add("delivered")
            tally.addSamples([receivedAt &- UInt64(sent)])
            tally.addQuarterSample(seq * 4 / plannedWrites, receivedAt &- UInt64(sent))
        case .authFail, .error:
            failed = true
            tally.error("subscriber \(index): " + String(decoding: message.readableBytesView.prefix(200).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default:
            break
        }
    }

    static func seq(_ key: String) -> Int? {
        guard key.hasPrefix("w-") else { return nil }
        return Int(key.dropFirst(2))
    }

    func closed(_ connection: WSConnection, error: String?) {
        if !subscribed {
            tally.add("closed_early")
            tally.error("subscriber \(index) closed before subscribing: \(error ?? "")")
        }
    }
}

/// The writer: one put per tick, key `w-<seq>`, value `{seq, sentNs}`, acked at APPLIED.
final class WriterDriver: WSDriver, @unchecked Sendable {
    let auth: [UInt8]
    let mapName: String
    let tally: Tally
    private var connection: WSConnection?
    private(set) var written = 0
    private var sendTimes: [UInt64] = []
    private let acks = Mutex<[UInt64]>([])
    private var acked = 0
    private let nodeId = "writer-" + UUIDString.make()

    init(auth: [UInt8], mapName: String, tally: Tally) {
        self.auth = auth
        self.mapName = mapName
        self.tally = tally
    }

    func opened(_ connection: WSConnection) {
        self.connection = connection
        connection.send(auth)
    }

    func write() {
        guard let connection, connection.isOpen else { return }
        let seq = written
        written += 1
        let now = monotonicNanos()
        let value: DataValue = ["seq": .int(Int64(seq)), "sentNs": .int(Int64(now)), "title": "latency probe"]
        let ts = Timestamp(millis: Int64(Date().timeIntervalSince1970 * 1000), counter: 0, nodeId: nodeId)
        let op = ClientOp(id: String(seq + 1), mapName: mapName, key: "w-\(seq)", opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false)
        connection.send(clientStyleBytes(.opBatch(OpBatch(ops: [op], writeConcern: .applied))))
        sendTimes.append(now)
        tally.add("written")
    }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck: tally.add("writer_ready")
        case .opAck:
            if acked < sendTimes.count {
                let rtt = receivedAt &- sendTimes[acked]
                acks.withLock { $0.append(rtt) }
            }
            acked += 1
        case .error, .opRejected, .authFail:
            tally.error("writer: " + String(decoding: message.readableBytesView.prefix(200).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default: break
        }
    }

    func ackSamples() -> [UInt64] { acks.withLock { $0.sorted() } }

    func closed(_ connection: WSConnection, error: String?) {
        if let error { tally.error("writer closed: \(error)") }
    }
}

enum UUIDString {
    static func make() -> String { UUID().uuidString.lowercased() }
}
