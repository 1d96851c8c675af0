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
/// one monotonic clock). Also reported on their own: the time to the `QUERY_UPDATE` (what
/// changes the subscriber's result), to the `SERVER_EVENT`, and the writer's own time from
/// its send to its `OP_ACK` (APPLIED).
///
/// The writer writes through `--url`; the subscribers connect to `--url` too, or, given one
/// or more `--subscriber-url`, round-robin over those (subscriber i on URL i mod n), e.g. over
/// the nodes of a cluster with the writer on one of them.
struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write-to-subscriber delivery latency with many live queries.")

    @Option(help: "The writer's node (and the subscribers', without --subscriber-url).") var url: String
    @Option(name: .customLong("subscriber-url"), help: "Repeatable: subscribers spread round-robin over these URLs (default: --url).")
    var subscriberURLs: [String] = []
    @Option var token: String
    @Option var subscribers: Int = 1000
    @Option(name: .customLong("writes-per-second")) var writesPerSecond: Double = 20
    @Option var duration: Double = 20
    @Option(name: .customLong("map-name")) var mapName: String = "latency"
    @Option var threads: Int = 2
    @Option(help: "Handshakes in flight while connecting.") var concurrency: Int = 100
    @Option(name: .customLong("server-pid"), help: "Report this process's CPU use while writing.") var serverPid: Int?
    @Option(name: .customLong("node-pids"), help: "Comma-separated pids of several nodes: each one's CPU use while writing.") var nodePids: String = ""
    @Option(name: .customLong("node-ids"), help: "Comma-separated node ids, in the order of --node-pids.") var nodeIds: String = ""
    @Option(help: "Label of the figure.") var label: String = "latency"
    @Option(name: .customLong("drain-timeout"), help: "Seconds to wait after the last write for the last deliveries.") var drainTimeout: Double = 5
    @Option(help: "Records (keys p-<i>) written to the map before the subscribers subscribe: each live query's result holds them.")
    var prefill: Int = 0
    @Flag(name: .customLong("split-by-owner"), help: "Read the partition map and report the writer's acks and the QUERY_UPDATEs apart for writes owned by the receiving node and by another.")
    var splitByOwner = false

    func run() throws {
        let endpoint = try Endpoint(url: url)
        let subscriberURLs = self.subscriberURLs.isEmpty ? [url] : self.subscriberURLs
        let subscriberEndpoints = try subscriberURLs.map { try Endpoint(url: $0) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let maxWrites = Int(duration * writesPerSecond) + 16
        // With --split-by-owner: each write's owner (keys are w-<seq>), the writer's node and
        // each subscriber URL's node, from the writer's node's PARTITION_MAP.
        var ownership: Ownership?
        if splitByOwner {
            let map = try fetchPartitionMap(group: group, url: url, token: token, tally: tally)
            func node(of url: String) throws -> Int {
                let wanted = try Endpoint(url: url)
                guard let id = map.websocket.first(where: { (try? Endpoint(url: $0.value)).map { $0.host == wanted.host && $0.port == wanted.port } ?? false })?.key,
                      let index = map.nodes.firstIndex(of: id) else { throw LoadError("\(url) is not a node of the partition map") }
                return index
            }
            ownership = Ownership(
                writeOwner: (0..<maxWrites).map { seq in map.nodes.firstIndex(of: map.owner(ofKey: "w-\(seq)"))! },
                writerNode: try node(of: url), targetNode: try subscriberURLs.map(node(of:)))
        }
        let byTarget = TargetSamples(targets: subscriberEndpoints.count, writes: maxWrites, ownership: ownership)
        if prefill > 0 {
            // Records already in the map, so that every live query's result holds them (a
            // result's size changes what an update costs where the result is kept).
            let prefillStart = Date()
            let (prefillAuth, prefillMap, records) = (authFrame(token: token), self.mapName, prefill)
            _ = try connect(group: group, endpoint: endpoint, source: nil, index: -2) {
                PrefillDriver(auth: prefillAuth, mapName: prefillMap, records: records, tally: tally)
            }.wait()
            guard wait(timeout: 300, { tally.count("prefill_done") == 1 || tally.count("errors") > 0 }), tally.count("prefill_done") == 1 else {
                throw LoadError("prefill of \(prefill) records did not finish: \(tally.firstErrors.withLock { $0 })")
            }
            log("latency: \(prefill) records prefilled in \(String(format: "%.1f", Date().timeIntervalSince(prefillStart))) s")
        }
        let auth = authFrame(token: token)
        let mapName = self.mapName
        let (duration, writesPerSecond) = (self.duration, self.writesPerSecond)
        let connectStart = Date()
        let targets = subscriberEndpoints.count
        openConnections(
            count: subscribers, concurrency: concurrency, sources: 1, group: group, endpoints: subscriberEndpoints, tally: tally,
            settledCount: { tally.count("subscribed") + tally.count("connect_failed") + tally.count("closed_early") }
        ) { index in
            SubscriberDriver(
                index: index, auth: auth, mapName: mapName, maxWrites: maxWrites, plannedWrites: max(1, Int(duration * writesPerSecond)),
                tally: tally, target: index % targets, byTarget: byTarget)
        }
        guard wait(timeout: 60, { tally.count("subscribed") + tally.count("connect_failed") + tally.count("closed_early") >= subscribers }) else {
            throw LoadError("only \(tally.count("subscribed")) of \(subscribers) subscribers ready")
        }
        let subscribed = tally.count("subscribed")
        log("latency: \(subscribed) subscribers ready in \(String(format: "%.1f", Date().timeIntervalSince(connectStart))) s")

        let writerBox = Mutex<WriterDriver?>(nil)
        let forwarded = ownership.map { o in o.writeOwner.map { $0 != o.writerNode } }
        let writerChannel = try connect(group: group, endpoint: endpoint, source: nil, index: -1) {
            let writer = WriterDriver(auth: auth, mapName: mapName, tally: tally, maxWrites: maxWrites, forwarded: forwarded)
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
        let pids = parseList(nodePids).compactMap(Int.init)
        let nodesBefore = pids.map { processTicks($0) }
        let task = writerChannel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
            if writer.written >= total { task.cancel(); return }
            writer.write()
        }
        wait(timeout: duration + 30) { tally.count("written") >= total }
        task.cancel()
        let elapsed = Date().timeIntervalSince(start)
        let serverCores = coresUsed(serverBefore, processTicks(serverPid), seconds: elapsed)
        let generatorCores = coresUsed(selfBefore, processTicks(Int(getpid())), seconds: elapsed)
        let nodeCores = zip(nodesBefore, pids.map { processTicks($0) }).map { coresUsed($0, $1, seconds: elapsed) }
        // Let the last deliveries arrive (the QUERY_UPDATEs too: through a coordinating node
        // they may trail the SERVER_EVENTs).
        let expected = tally.count("written") * subscribed
        let drainStart = Date()
        // (Nothing more comes once every subscriber was closed: the wait ends then too.)
        wait(timeout: drainTimeout) {
            (tally.count("delivered") >= expected && tally.otherSamples.withLock { $0.count } >= expected)
                || tally.count("closed_during_run") >= subscribed
        }
        let drained = tally.count("delivered") >= expected && tally.otherSamples.withLock { $0.count } >= expected
        let drainSeconds = Date().timeIntervalSince(drainStart)
        // The nodes' CPU from the first write to the last delivery (or the drain's timeout).
        let nodesCPUSeconds = zip(nodesBefore, pids.map { processTicks($0) }).map { before, after in
            before.flatMap { b in after.map { Double($0 - b) / 100 } } ?? .nan
        }
        sleep(seconds: 0.5)
        tally.finished.set()
        let closeCodes = tally.counters.withLock { $0.filter { $0.key.hasPrefix("close_code_") }.sorted { $0.key < $1.key } }
            .map { "\($0.key.dropFirst("close_code_".count))=\($0.value)" }
        let samples = tally.samples.withLock { $0.sorted() }
        let updateSamples = tally.otherSamples.withLock { $0.sorted() }
        let eventSamples = tally.eventSamples.withLock { $0.sorted() }
        let ackSamples = writer.ackSamples()
        let (localAcks, forwardedAcks) = writer.ackSamplesByOwner()
        let (localUpdates, remoteUpdates) = byTarget.updatesByOwner.withLock { ($0.local.sorted(), $0.remote.sorted()) }
        let updatesByTarget = byTarget.updates.withLock { $0.map { $0.sorted() } }
        let subscribedByTarget = byTarget.subscribed.withLock { $0 }
        // Writes whose QUERY_UPDATE reached every subscriber, none, or some: a write missing
        // for everyone points at a lost message upstream of the subscribers' nodes.
        let perWrite = byTarget.updatesPerWrite.withLock { Array($0.prefix(tally.count("written"))) }
        var missingRanges: [String] = []
        var seq = 0
        while seq < perWrite.count, missingRanges.count < 10 {
            guard perWrite[seq] < subscribed else { seq += 1; continue }
            let first = seq
            while seq < perWrite.count, perWrite[seq] < subscribed { seq += 1 }
            missingRanges.append("\(first)-\(seq - 1)")
        }
        let quarterP99 = tally.quarters.withLock { $0.map { q in (percentileMs(q.sorted(), 0.99) * 10).rounded() / 10 } }
        emit([
            "figure": "latency", "label": label, "subscribers": subscribed, "writes": tally.count("written"), "prefilled_records": prefill,
            "writes_per_s": writesPerSecond, "deliveries": samples.count, "expected_deliveries": expected,
            "first_via_server_event": tally.count("first_event"), "first_via_query_update": tally.count("first_update"),
            "p50_ms": percentileMs(samples, 0.5), "p90_ms": percentileMs(samples, 0.9), "p99_ms": percentileMs(samples, 0.99),
            "max_ms": samples.last.map { Double($0) / 1e6 } ?? .nan,
            "p99_ms_by_quarter_of_run": quarterP99.map { String($0) },
            // The QUERY_UPDATE changes what the subscriber's live query shows: the latency a user feels.
            "query_updates": updateSamples.count, "query_update_p50_ms": percentileMs(updateSamples, 0.5),
            "query_update_p99_ms": percentileMs(updateSamples, 0.99),
            "query_update_max_ms": updateSamples.last.map { Double($0) / 1e6 } ?? .nan,
            "server_events": eventSamples.count, "server_event_p50_ms": percentileMs(eventSamples, 0.5),
            "server_event_p99_ms": percentileMs(eventSamples, 0.99),
            // The writer's send to its OP_ACK (APPLIED): through a node that forwards to the owner, the round trip to it.
            "writer_acks": ackSamples.count, "writer_ack_p50_ms": percentileMs(ackSamples, 0.5),
            "writer_ack_p99_ms": percentileMs(ackSamples, 0.99), "writer_ack_max_ms": ackSamples.last.map { Double($0) / 1e6 } ?? .nan,
            "subscribers_closed_during_run": tally.count("closed_during_run"), "close_codes": closeCodes,
            "writes_updating_all": perWrite.filter { $0 >= subscribed }.count, "writes_updating_none": perWrite.filter { $0 == 0 }.count,
            "writes_updating_some": perWrite.filter { $0 > 0 && $0 < subscribed }.count,
            "writes_not_updating_all_seq_ranges": missingRanges,
            // With --split-by-owner: acks of writes the writer's node owns / forwards to another;
            // QUERY_UPDATEs of writes the subscriber's own node owns / another node owns.
            "writer_acks_local": localAcks.count, "writer_ack_local_p50_ms": percentileMs(localAcks, 0.5),
            "writer_ack_local_p99_ms": percentileMs(localAcks, 0.99),
            "writer_acks_forwarded": forwardedAcks.count, "writer_ack_forwarded_p50_ms": percentileMs(forwardedAcks, 0.5),
            "writer_ack_forwarded_p99_ms": percentileMs(forwardedAcks, 0.99),
            "query_updates_owned_by_subscriber_node": localUpdates.count,
            "query_update_owned_by_subscriber_node_p50_ms": percentileMs(localUpdates, 0.5),
            "query_update_owned_by_subscriber_node_p99_ms": percentileMs(localUpdates, 0.99),
            "query_updates_owned_by_other_node": remoteUpdates.count,
            "query_update_owned_by_other_node_p50_ms": percentileMs(remoteUpdates, 0.5),
            "query_update_owned_by_other_node_p99_ms": percentileMs(remoteUpdates, 0.99),
            // Per subscriber URL (in the order given): subscribers, QUERY_UPDATE p50 and p99.
            "subscriber_urls": subscriberURLs, "subscribers_by_url": subscribedByTarget,
            "query_update_p50_ms_by_url": updatesByTarget.map { percentileMs($0, 0.5) },
            "query_update_p99_ms_by_url": updatesByTarget.map { percentileMs($0, 0.99) },
            "server_cores": serverCores, "generator_cores": generatorCores,
            "node_ids": parseList(nodeIds), "node_cpu_pct": nodeCores.map { ($0 * 1000).rounded() / 10 },
            // After the last write: how long until every delivery arrived, and the nodes' CPU
            // from the first write to then (the cost of the writes whatever the backlog).
            "drained": drained, "drain_s": drainSeconds, "node_cpu_s_to_last_delivery": nodesCPUSeconds,
            "node_cpu_ms_per_write": pids.isEmpty ? Double.nan : nodesCPUSeconds.reduce(0, +) * 1000 / Double(max(1, tally.count("written"))),
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
    private var seenEvent: [Bool]
    private var subscribed = false
    private var failed = false
    let plannedWrites: Int
    /// Which subscriber URL this one connected to (an index into `byTarget`).
    let target: Int
    let byTarget: TargetSamples

    init(index: Int, auth: [UInt8], mapName: String, maxWrites: Int, plannedWrites: Int, tally: Tally, target: Int = 0, byTarget: TargetSamples) {
        self.plannedWrites = plannedWrites
        self.target = target
        self.byTarget = byTarget
        self.index = index
        self.auth = auth
        self.mapName = mapName
        self.tally = tally
        seen = [Bool](repeating: false, count: maxWrites)
        seenUpdate = [Bool](repeating: false, count: maxWrites)
        seenEvent = [Bool](repeating: false, count: maxWrites)
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        let parsed: (kind: InboundKind, seq: Int?, sentNs: Int64?, prefilled: Bool) = message.scan { s in
            let kind = inboundKind(s)
            switch kind {
            case .serverEvent:
                let key = s.lookup(path: ["payload", "key"]).flatMap(s.stringValue)
                let sent = s.lookup(path: ["payload", "record", "value", "sentNs"]).flatMap(s.int)
                return (kind, key.flatMap(Self.seq), sent, key?.hasPrefix(PrefillDriver.keyPrefix) ?? false)
            case .queryUpdate:
                let key = s.lookup(path: ["payload", "key"]).flatMap(s.stringValue)
                let sent = s.lookup(path: ["payload", "value", "sentNs"]).flatMap(s.int)
                return (kind, key.flatMap(Self.seq), sent, key?.hasPrefix(PrefillDriver.keyPrefix) ?? false)
            default:
                return (kind, nil, nil, false)
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
                byTarget.subscribed.withLock { $0[target] += 1 }
            }
        case .serverEvent, .queryUpdate:
            // The rest of a prefilled result (ENTERs after the first QUERY_RESP): not a probe.
            if parsed.prefilled { return }
            guard let seq = parsed.seq, let sent = parsed.sentNs, seq >= 0, seq < seen.count else {
                return tally.error("delivery without seq/sentNs")
            }
            if parsed.kind == .queryUpdate, !seenUpdate[seq] {
                seenUpdate[seq] = true
                tally.otherSamples.withLock { $0.append(receivedAt &- UInt64(sent)) }
                byTarget.updates.withLock { $0[target].append(receivedAt &- UInt64(sent)) }
                byTarget.updatesPerWrite.withLock { $0[seq] += 1 }
                if let ownership = byTarget.ownership {
                    let local = ownership.writeOwner[seq] == ownership.targetNode[target]
                    byTarget.updatesByOwner.withLock { local ? $0.local.append(receivedAt &- UInt64(sent)) : $0.remote.append(receivedAt &- UInt64(sent)) }
                }
            }
            if parsed.kind == .serverEvent, !seenEvent[seq] {
                seenEvent[seq] = true
                tally.eventSamples.withLock { $0.append(receivedAt &- UInt64(sent)) }
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
        } else if !tally.finished.isSet {
            // The server closed a subscriber during the run (1013: it fell behind, or the node
            // lost pushes it relied on): it gets nothing more.
            tally.add("closed_during_run")
            tally.add("close_code_\(connection.closeCode.map(String.init) ?? "none")")
        }
    }
}

/// Samples per subscriber URL: subscribers that got their `QUERY_RESP`, and times to the
/// `QUERY_UPDATE`; and per write, how many subscribers got it.
final class TargetSamples: Sendable {
    let subscribed: Mutex<[Int]>
    let updates: Mutex<[[UInt64]]>
    /// Per write (by seq): how many subscribers got its `QUERY_UPDATE`.
    let updatesPerWrite: Mutex<[Int]>
    let ownership: Ownership?
    /// Times to the `QUERY_UPDATE` of writes owned by the subscriber's node, and by another.
    let updatesByOwner = Mutex<(local: [UInt64], remote: [UInt64])>(([], []))

    init(targets: Int, writes: Int, ownership: Ownership?) {
        subscribed = Mutex([Int](repeating: 0, count: targets))
        updates = Mutex([[UInt64]](repeating: [], count: targets))
        updatesPerWrite = Mutex([Int](repeating: 0, count: writes))
        self.ownership = ownership
    }
}

/// Who owns what, by index into the partition map's nodes.
struct Ownership: Sendable {
    /// The owner of write seq's key.
    var writeOwner: [Int]
    var writerNode: Int
    /// The node of each subscriber URL.
    var targetNode: [Int]
}

/// The writer: one put per tick, key `w-<seq>`, value `{seq, sentNs}`, acked at APPLIED.
final class WriterDriver: WSDriver, @unchecked Sendable {
    let auth: [UInt8]
    let mapName: String
    let tally: Tally
    private var connection: WSConnection?
    private(set) var written = 0
    private var sendTimes: [UInt64] = []
    private var ackedSeq: [Bool]
    private let acks = Mutex<[UInt64]>([])
    /// With the owners known: acks of writes the writer's node owns, and of writes it forwards.
    private let acksByOwner = Mutex<(local: [UInt64], forwarded: [UInt64])>(([], []))
    private let forwarded: [Bool]?
    private var acked = 0
    private let nodeId = "writer-" + UUIDString.make()

    init(auth: [UInt8], mapName: String, tally: Tally, maxWrites: Int = 0, forwarded: [Bool]? = nil) {
        self.auth = auth
        self.mapName = mapName
        self.tally = tally
        self.forwarded = forwarded
        ackedSeq = [Bool](repeating: false, count: maxWrites)
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
            // Matched by op id (id = seq + 1): through a cluster node, a write it forwards may
            // be acknowledged after a later one it owns. In order when the id is unreadable.
            let lastId = message.scan { s in s.lookup(path: ["payload", "lastId"]).flatMap(s.stringValue) }
            var seq = acked
            if let id = lastId.flatMap({ Int($0) }), id >= 1, id - 1 < sendTimes.count { seq = id - 1 }
            acked += 1
            guard seq < sendTimes.count, seq >= ackedSeq.count || !ackedSeq[seq] else { return }
            if seq < ackedSeq.count { ackedSeq[seq] = true }
            let rtt = receivedAt &- sendTimes[seq]
            acks.withLock { $0.append(rtt) }
            if let forwarded, seq < forwarded.count {
                acksByOwner.withLock { forwarded[seq] ? $0.forwarded.append(rtt) : $0.local.append(rtt) }
            }
        case .error, .opRejected, .authFail:
            tally.error("writer: " + String(decoding: message.readableBytesView.prefix(200).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default: break
        }
    }

    func ackSamples() -> [UInt64] { acks.withLock { $0.sorted() } }

    func ackSamplesByOwner() -> (local: [UInt64], forwarded: [UInt64]) {
        acksByOwner.withLock { ($0.local.sorted(), $0.forwarded.sorted()) }
    }

    func closed(_ connection: WSConnection, error: String?) {
        if let error { tally.error("writer closed: \(error)") }
    }
}

/// Writes `records` keys `p-<i>` (64-byte values) in OP_BATCHes of 500 at APPLIED, one batch
/// in flight, then counts `prefill_done` and closes.
final class PrefillDriver: WSDriver, @unchecked Sendable {
    static let keyPrefix = "p-"
    let auth: [UInt8]
    let mapName: String
    let records: Int
    let tally: Tally
    private var sent = 0
    private let nodeId = "prefill-" + UUIDString.make()

    init(auth: [UInt8], mapName: String, records: Int, tally: Tally) {
        self.auth = auth
        self.mapName = mapName
        self.records = records
        self.tally = tally
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    private func next(_ connection: WSConnection) {
        guard sent < records else {
            tally.add("prefill_done")
            connection.close()
            return
        }
        let ts = Timestamp(millis: Int64(Date().timeIntervalSince1970 * 1000), counter: 0, nodeId: nodeId)
        let ops = (sent..<min(records, sent + 500)).map { i in
            ClientOp(id: String(i + 1), mapName: mapName, key: Self.keyPrefix + String(i), opType: "PUT",
                     record: LWWRecord(value: ["i": .int(Int64(i)), "pad": .string(String(repeating: "x", count: 48))], timestamp: ts),
                     timestamp: ts, synced: false)
        }
        sent += ops.count
        connection.send(clientStyleBytes(.opBatch(OpBatch(ops: ops, writeConcern: .applied))))
    }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck, .opAck: next(connection)
        case .error, .opRejected, .authFail:
            tally.error("prefill: " + String(decoding: message.readableBytesView.prefix(200).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default: break
        }
    }

    func closed(_ connection: WSConnection, error: String?) {
        if let error, sent < records { tally.error("prefill closed: \(error)") }
    }
}

enum UUIDString {
    static func make() -> String { UUID().uuidString.lowercased() }
}
