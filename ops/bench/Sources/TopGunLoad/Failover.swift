import ArgumentParser
import BatchFrames
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TopGunCore
import TopGunWire

#if canImport(Glibc)
import Glibc
#endif

/// `failover`: under a light write load on the surviving nodes, SIGKILLs one node and
/// measures the time from the kill to the first acknowledged (PERSISTED) write of a key the
/// dead node owned.
///
/// Probes: for each surviving node, `--probes-per-node` keys whose partitions the victim
/// owns, each written again and again through a connection to that surviving node (which
/// forwards it to the owner), one write at a time, the next `--retry-ms` after the answer
/// (an ack, or the ERROR of a refused write). The server's hint (`retryAfterMs`, 1 s) is not
/// followed, so that the figure is the cluster's and not the client's back-off. Each
/// survivor also follows the partition map, so the time at which it announced a table
/// without the victim is reported too.
struct Failover: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time from SIGKILL of a node to the first acknowledged write of a key it owned.")

    @Option(help: "ws:// URL of a node that survives, to read the partition map from.") var url: String
    @Option var token: String
    @Option(name: .customLong("victim-node")) var victimNode: String
    @Option(name: .customLong("victim-pid")) var victimPid: Int32
    @Option(name: .customLong("probes-per-node")) var probesPerNode: Int = 3
    @Option(name: .customLong("pre-seconds"), help: "Seconds of load (and probe writes) before the kill.") var preSeconds: Double = 3
    @Option(help: "Seconds to wait for every probe after the kill.") var timeout: Double = 60
    @Option(name: .customLong("retry-ms")) var retryMs: Int = 50
    @Option(name: .customLong("load-connections-per-node")) var loadConnectionsPerNode: Int = 2
    @Option(name: .customLong("load-interval-ms"), help: "Each load connection sends a batch this often (one in flight at most).") var loadIntervalMs: Int = 100
    @Option(name: .customLong("load-ops"), help: "Puts per load batch (new keys over all partitions).") var loadOps: Int = 10
    @Option var label: String = "failover"
    @Option var threads: Int = 2

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let map = try fetchPartitionMap(group: group, url: url, token: token, tally: tally)
        guard let victimIndex = map.nodes.firstIndex(of: victimNode) else { throw LoadError("node \(victimNode) is not in the map \(map.nodes)") }
        let survivors = map.nodes.filter { $0 != victimNode }
        let victimPartitions = map.partitionsOwned(by: victimNode)
        let clock = FailoverClock()
        let auth = authFrame(token: token)

        // Each survivor's announcements of new tables.
        let tables = Mutex<[String: (version: Int64, seconds: Double)]>([:])
        for survivor in survivors {
            let victim = victimNode
            _ = try connect(group: group, endpoint: try Endpoint(url: map.websocket[survivor]!), source: nil, index: -1) {
                MapFollower(auth: auth, tally: tally) { received, at in
                    guard let kill = clock.killedAt, at > kill, let m = try? ClientPartitionMap(received), m.partitionsOwned(by: victim) == 0 else { return }
                    tables.withLock { if $0[survivor] == nil { $0[survivor] = (received.version, Double(at - kill) / 1e9) } }
                }
            }.wait()
        }

        // Probe keys: owned by the victim, a different partition each.
        var probes: [(key: String, via: String, viaIsBackup: Bool)] = []
        var used = Set<Int>()
        for survivor in survivors {
            var i = 0, found = 0
            while found < probesPerNode {
                let key = "probe-\(survivor)-\(i)"
                i += 1
                let partition = PartitionFunction.clientPartition(forKey: key)
                guard Int(map.owners[partition]) == victimIndex, !used.contains(partition) else { continue }
                // Alternate: a partition whose backup is the survivor (it promotes itself and
                // serves the write locally), then one whose backup is another node (forwarded).
                let isBackup = map.backups[partition].contains(survivor)
                if survivors.count > 1, isBackup != (found % 2 == 0), i < 100_000 { continue }
                used.insert(partition)
                probes.append((key, survivor, isBackup))
                found += 1
            }
        }
        let probeDrivers = Mutex<[ProbeDriver]>([])
        for (index, probe) in probes.enumerated() {
            let retry = retryMs
            _ = try connect(group: group, endpoint: try Endpoint(url: map.websocket[probe.via]!), source: nil, index: index) {
                let driver = ProbeDriver(key: probe.key, index: index, auth: auth, retry: .milliseconds(Int64(retry)), clock: clock, tally: tally)
                probeDrivers.withLock { $0.append(driver) }
                return driver
            }.wait()
        }
        // Light load on the survivors.
        var loadIndex = 0
        for survivor in survivors {
            for _ in 0..<loadConnectionsPerNode {
                let index = loadIndex
                loadIndex += 1
                let (interval, ops) = (loadIntervalMs, loadOps)
                _ = try connect(group: group, endpoint: try Endpoint(url: map.websocket[survivor]!), source: nil, index: index) {
                    LightLoadDriver(index: index, auth: auth, interval: .milliseconds(Int64(interval)), ops: ops, clock: clock, tally: tally)
                }.wait()
            }
        }
        guard wait(timeout: 20, { tally.count("probe_ready") == probes.count && tally.count("load_ready") == loadIndex }) else {
            throw LoadError("probes or load did not authenticate: \(tally.firstErrors.withLock { $0 })")
        }
        sleep(seconds: preSeconds)
        let preOK = tally.count("probe_acked")
        guard preOK > 0 else { throw LoadError("no probe write was acknowledged before the kill: \(tally.firstErrors.withLock { $0 })") }
        log("\(label): \(probes.count) probes through \(survivors) for keys of \(victimNode) (\(victimPartitions) partitions), \(preOK) probe writes acknowledged before the kill; SIGKILL \(victimPid)")

        clock.kill(pid: victimPid)
        let done = wait(timeout: timeout, poll: 0.005) { probeDrivers.withLock { $0.allSatisfy { $0.recoveredAfter != nil } } }
        // The tables' announcements, if not in yet.
        wait(timeout: 10) { tables.withLock { $0.count } == survivors.count }
        // The load a little longer, to show it back at its rate.
        sleep(seconds: 3)
        let end = Double(monotonicNanos() - clock.killedAt!) / 1e9

        let results = probeDrivers.withLock { $0.sorted { $0.index < $1.index } }
        let times = results.map { $0.recoveredAfter ?? .nan }
        let recovered = times.filter { !$0.isNaN }
        let preRtts = results.flatMap(\.preKillRtts).sorted()
        let table = tables.withLock { $0 }
        // Whole seconds only: the last, partial one is left out.
        let buckets = clock.loadBuckets(from: -Int(preSeconds), to: Int(end) - 1)
        emit([
            "figure": "failover", "label": label, "victim": victimNode, "victim_pid": Int(victimPid), "nodes": map.nodes.count,
            "victim_partitions": victimPartitions, "map_version_before": Int(map.version),
            "probes": probes.count, "probes_recovered": recovered.count, "all_recovered": done,
            "first_ack_s": recovered.min() ?? .nan, "all_acked_s": done ? (recovered.max() ?? .nan) : .nan,
            "probe_ack_s": times, "probe_via": results.map { probes[$0.index].via },
            "probe_via_is_backup": results.map { probes[$0.index].viaIsBackup ? "backup" : "other" },
            "probe_attempts_after_kill": results.map(\.attemptsAfterKill),
            "probe_refusals_after_kill": results.map(\.refusalsAfterKill),
            "probe_longest_attempt_after_kill_s": results.map { Double($0.longestAttemptAfterKill) / 1e9 },
            "probe_pre_kill_rtt_p50_ms": percentileMs(preRtts, 0.5),
            "table_without_victim_s": survivors.map { table[$0]?.seconds ?? .nan },
            "table_version_after": survivors.map { Int(table[$0]?.version ?? -1) },
            "survivors": survivors, "retry_ms": retryMs,
            "load_puts_per_s_target": Double(loadIndex * loadOps) * 1000 / Double(loadIntervalMs),
            "load_buckets_from_s": -Int(preSeconds), "load_acked_puts_per_s": buckets,
            "load_refused_batches_after_kill": tally.count("load_refused_after_kill"),
            "errors": tally.count("errors"), "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? group.syncShutdownGracefully()
    }
}

/// When the victim was killed (monotonic nanoseconds; nil before), and when load puts were
/// acknowledged.
final class FailoverClock: Sendable {
    private let at = Atomic<UInt64>(0)
    private let acks = Mutex<[(UInt64, Int)]>([])

    func ackedLoad(_ ops: Int, at time: UInt64) { acks.withLock { $0.append((time, ops)) } }

    /// Acknowledged load puts per whole second relative to the kill, from `from` to `to`.
    func loadBuckets(from: Int, to: Int) -> [Int] {
        var buckets = [Int](repeating: 0, count: max(0, to - from + 1))
        for (time, ops) in acks.withLock({ $0 }) {
            let s = second(time) - from
            if s >= 0 && s < buckets.count { buckets[s] += ops }
        }
        return buckets
    }
    var killedAt: UInt64? { let v = at.load(ordering: .acquiring); return v == 0 ? nil : v }

    func kill(pid: Int32) {
        at.store(monotonicNanos(), ordering: .releasing)
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Whole seconds since the kill (negative before), for buckets.
    func second(_ t: UInt64) -> Int {
        guard let k = killedAt else { return -1_000_000 }
        return t >= k ? Int((t - k) / 1_000_000_000) : -Int((k - t) / 1_000_000_000) - 1
    }
}

/// One probe key written through one surviving node, one write at a time.
final class ProbeDriver: WSDriver, @unchecked Sendable {
    let key: String
    let index: Int
    let auth: [UInt8]
    let retry: TimeAmount
    let clock: FailoverClock
    let tally: Tally
    private let nodeId: String
    private var attempt = 0
    private var sentAt: UInt64 = 0
    /// The write being sent; sent again, unchanged, after a refusal (the server acknowledges
    /// nothing later on the connection until it is), replaced after its ack.
    private var pending: [UInt8]?
    private var ready = false
    private let state = Mutex<(recovered: Double?, attempts: Int, refusals: Int, longest: UInt64, rtts: [UInt64])>((nil, 0, 0, 0, []))

    var recoveredAfter: Double? { state.withLock { $0.recovered } }
    var attemptsAfterKill: Int { state.withLock { $0.attempts } }
    var refusalsAfterKill: Int { state.withLock { $0.refusals } }
    var longestAttemptAfterKill: UInt64 { state.withLock { $0.longest } }
    var preKillRtts: [UInt64] { state.withLock { $0.rtts } }

    init(key: String, index: Int, auth: [UInt8], retry: TimeAmount, clock: FailoverClock, tally: Tally) {
        self.key = key
        self.index = index
        self.auth = auth
        self.retry = retry
        self.clock = clock
        self.tally = tally
        nodeId = "f0f0f0f0-0000-4000-8000-\(String(index).leftPadded(12))"
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    private func send(_ connection: WSConnection) {
        if pending == nil {
            attempt += 1
            let ts = Timestamp(millis: Int64(Date().timeIntervalSince1970 * 1000), counter: Int64(attempt), nodeId: nodeId)
            let op = ClientOp(id: String(attempt), mapName: "failover", key: key, opType: "PUT",
                              record: LWWRecord(value: ["write": .int(Int64(attempt))], timestamp: ts), timestamp: ts, synced: false)
            pending = WireCodec().encode(.opBatch(OpBatch(ops: [op], writeConcern: .persisted)))
        }
        sentAt = monotonicNanos()
        connection.send(pending!)
    }

    private func next(_ connection: WSConnection) {
        guard recoveredAfter == nil else { return }
        connection.context?.eventLoop.scheduleTask(in: retry) { [self] in self.send(connection) }
    }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        let kind = message.scan(inboundKind)
        switch kind {
        case .authAck:
            guard !ready else { return }
            ready = true
            tally.add("probe_ready")
            send(connection)
        case .opAck, .error:
            var success = false
            if kind == .opAck, case .opAck(let ack)? = try? WireCodec().decode(Array(message.readableBytesView)) {
                success = ack.results?.first?.success == true && ack.achievedLevel == .persisted
                if !success { tally.error("probe \(key): \(printable(message))") }
            } else if kind == .error, clock.killedAt == nil {
                tally.error("probe \(key) before the kill: \(printable(message))")
            }
            if success { pending = nil }
            let took = receivedAt &- sentAt
            if let kill = clock.killedAt, sentAt >= kill {
                state.withLock { s in
                    s.attempts += 1
                    s.longest = max(s.longest, took)
                    if !success { s.refusals += 1 }
                    if success && s.recovered == nil { s.recovered = Double(receivedAt - kill) / 1e9 }
                }
            } else if success, clock.killedAt == nil {
                tally.add("probe_acked")
                state.withLock { $0.rtts.append(took) }
            }
            next(connection)
        default:
            break
        }
    }

    func closed(_ connection: WSConnection, error: String?) {
        tally.error("probe \(key) connection closed: \(error ?? "")")
    }
}

/// Light load: a batch of `ops` new keys every `interval` (one in flight at most), PERSISTED;
/// acknowledged puts counted per second relative to the kill.
final class LightLoadDriver: WSDriver, @unchecked Sendable {
    let index: Int
    let auth: [UInt8]
    let interval: TimeAmount
    let ops: Int
    let clock: FailoverClock
    let tally: Tally
    private var seq = 0
    private var batch = 0
    private var inFlight = false
    private var ready = false
    /// A refused batch, sent again (unchanged) at the next tick.
    private var refused: [UInt8]?

    init(index: Int, auth: [UInt8], interval: TimeAmount, ops: Int, clock: FailoverClock, tally: Tally) {
        self.index = index
        self.auth = auth
        self.interval = interval
        self.ops = ops
        self.clock = clock
        self.tally = tally
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    private func tick(_ connection: WSConnection) {
        guard !inFlight, connection.isOpen else { return }
        if let again = refused {
            inFlight = true
            connection.send(again)
            return
        }
        batch += 1
        let nodeId = "10ad10ad-0000-4000-8000-\(String(index).leftPadded(12))"
        let millis = Int64(Date().timeIntervalSince1970 * 1000)
        var list: [ClientOp] = []
        for i in 0..<ops {
            seq += 1
            let ts = Timestamp(millis: millis, counter: Int64(seq), nodeId: nodeId)
            list.append(ClientOp(id: "\(batch)\(String(i).leftPadded(4))", mapName: "failover-load", key: "load-\(index)-\(seq)", opType: "PUT",
                                 record: LWWRecord(value: ["n": .int(Int64(seq))], timestamp: ts), timestamp: ts, synced: false))
        }
        inFlight = true
        last = WireCodec().encode(.opBatch(OpBatch(ops: list, writeConcern: .persisted)))
        connection.send(last)
    }

    private var last: [UInt8] = []

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch message.scan(inboundKind) {
        case .authAck:
            guard !ready else { return }
            ready = true
            tally.add("load_ready")
            connection.context?.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [self] _ in self.tick(connection) }
        case .opAck:
            inFlight = false
            refused = nil
            clock.ackedLoad(ops, at: receivedAt)
        case .error:
            inFlight = false
            refused = last
            if clock.killedAt != nil { tally.add("load_refused_after_kill") } else { tally.error("load before the kill: \(printable(message))") }
        default:
            break
        }
    }

    func closed(_ connection: WSConnection, error: String?) {}
}
