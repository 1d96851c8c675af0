import ArgumentParser
import BatchFrames
import Foundation
import NIOCore
import NIOPosix
import TopGunCore
import TopGunWire

/// `cluster-throughput`: acknowledged puts per second through a cluster, every put a new key.
///
/// - `--routing owner`: each client has one connection per node and sends each batch to the
///   node owning all of its keys (keys are picked by the client partition map, as a
///   cluster-aware client groups a batch by owner); nothing is forwarded.
/// - `--routing single`: each client has one connection, to `--single-url`; the node
///   forwards ops for partitions it does not own to their owners.
///
/// The same number of batches is in flight in both: `--window` per client, split evenly over
/// a client's connections when routing by owner. Reports each node's CPU (and PostgreSQL's,
/// with `--pg-pid`) over the measured window.
struct ClusterThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster-throughput", abstract: "Acknowledged puts/s through the nodes of a cluster.")

    @Option(help: "ws:// URL of a node, to read the partition map from.") var url: String
    @Option var token: String
    @Option(help: "owner (a connection per node, keys grouped by owner) or single (every client on --single-url).") var routing: String = "owner"
    @Option(name: .customLong("single-url"), help: "The node every client uses with --routing single (default --url).") var singleURL: String?
    @Option var clients: Int = 24
    @Option(help: "Batches in flight per client (with --routing owner, split over its connections).") var window: Int = 6
    @Option(name: .customLong("ops-per-batch")) var opsPerBatch: Int = 100
    @Option(name: .customLong("value-bytes")) var valueBytes: Int = 64
    @Option var duration: Double = 15
    @Option var warmup: Double = 3
    @Option(name: .customLong("write-concern")) var writeConcern: String = "PERSISTED"
    @Option(name: .customLong("map-name")) var mapName: String = "bench"
    @Option var threads: Int = 2
    @Option(help: "Label of the figure.") var label: String = "cluster"
    @Option(name: .customLong("node-pids"), help: "Comma-separated pids of the nodes, in the order of --node-ids.") var nodePids: String = ""
    @Option(name: .customLong("node-ids"), help: "Comma-separated node ids, in the order of --node-pids.") var nodeIds: String = ""
    @Option(name: .customLong("pg-pid"), help: "PostgreSQL's postmaster: its and its children's CPU over the window.") var pgPid: Int?

    func run() throws {
        guard let concern = WriteConcern(rawValue: writeConcern.uppercased()) else { throw ValidationError("unknown write concern \(writeConcern)") }
        guard routing == "owner" || routing == "single" else { throw ValidationError("--routing owner|single") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let map = try fetchPartitionMap(group: group, url: url, token: token, tally: tally)
        let n = map.nodes.count
        let auth = authFrame(token: token)
        let measuring = RunFlag(), stopping = RunFlag()
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        let byOwner = routing == "owner"
        let perConnectionWindow = byOwner ? max(1, window / n) : window
        // Connection i: client i / n, node i % n (owner routing); or client i (single).
        let connections = byOwner ? clients * n : clients
        var endpoints: [Endpoint] = []
        for node in map.nodes {
            guard let ws = map.websocket[node] else { throw LoadError("no WebSocket URL for node \(node) in the map") }
            endpoints.append(try Endpoint(url: ws))
        }
        let single = try Endpoint(url: singleURL ?? url)
        let (opsPerBatch, valueBytes, mapName, owners) = (self.opsPerBatch, self.valueBytes, self.mapName, map.owners)
        for index in 0..<connections {
            let target = byOwner ? index % n : nil
            let endpoint = target.map { endpoints[$0] } ?? single
            connect(group: group, endpoint: endpoint, source: nil, index: index) {
                let frames = RoutedFrames(
                    connection: index, opsPerBatch: opsPerBatch, valueBytes: valueBytes, mapName: mapName, writeConcern: concern,
                    nowMillis: nowMillis, owners: owners, target: target)
                return RoutedLoadDriver(frames: frames, auth: auth, window: perConnectionWindow, expected: concern, tally: tally,
                                        measuring: measuring, stopping: stopping)
            }.whenFailure { error in
                tally.error("connect \(index): \(error)")
                tally.add("connect_failed")
            }
        }
        guard wait(timeout: 30, { tally.count("ready") + tally.count("connect_failed") + tally.count("closed_early") >= connections }) else {
            throw LoadError("only \(tally.count("ready")) of \(connections) connections became ready")
        }
        let ready = tally.count("ready")
        log("\(label): \(ready) connections (\(routing) routing over \(n) nodes, map version \(map.version)), window \(perConnectionWindow) each, \(concern.rawValue)")
        sleep(seconds: warmup)

        let pids = parseList(nodePids).compactMap(Int.init)
        let ids = parseList(nodeIds)
        measuring.set()
        let ackedBefore = tally.count("acked")
        let start = Date()
        let nodesBefore = pids.map { processTicks($0) }
        let pgBefore = postgresTicks(pgPid)
        let selfBefore = processTicks(Int(getpid()))
        sleep(seconds: duration)
        let acked = tally.count("acked") - ackedBefore
        let elapsed = Date().timeIntervalSince(start)
        let nodesAfter = pids.map { processTicks($0) }
        let pgAfter = postgresTicks(pgPid)
        let generatorCores = coresUsed(selfBefore, processTicks(Int(getpid())), seconds: elapsed)
        stopping.set()
        wait(timeout: 15) { tally.count("finished") >= ready }

        let nodeCores = zip(nodesBefore, nodesAfter).map { coresUsed($0, $1, seconds: elapsed) }
        let nodeSeconds = nodeCores.reduce(0, +) * elapsed
        let pgSeconds = pgPid == nil ? Double.nan : postgresSeconds(pgBefore, pgAfter)
        let puts = Double(acked * opsPerBatch)
        let rtts = tally.samples.withLock { $0.sorted() }
        let perThousand = { (seconds: Double) in puts > 0 ? seconds / (puts / 1000) : Double.nan }
        emit([
            "figure": "cluster_throughput", "label": label, "nodes": n, "routing": routing, "write_concern": concern.rawValue,
            "clients": clients, "connections": ready, "window_per_connection": perConnectionWindow,
            "batches_in_flight": ready * perConnectionWindow, "ops_per_batch": opsPerBatch, "value_bytes": valueBytes,
            "map_version": Int(map.version), "partitions_owned": map.nodes.map { "\($0)=\(map.partitionsOwned(by: $0))" },
            "duration_s": elapsed, "puts_per_s": puts / elapsed, "batches_per_s": Double(acked) / elapsed,
            "rtt_p50_ms": percentileMs(rtts, 0.5), "rtt_p99_ms": percentileMs(rtts, 0.99),
            "node_ids": ids, "node_cpu_pct": nodeCores.map { ($0 * 1000).rounded() / 10 },
            "nodes_cpu_pct_total": (nodeCores.reduce(0, +) * 1000).rounded() / 10,
            "pg_cpu_pct": (pgSeconds / elapsed * 1000).rounded() / 10,
            "generator_cpu_pct": (generatorCores * 1000).rounded() / 10,
            "node_cpu_s_per_1000_puts": perThousand(nodeSeconds), "pg_cpu_s_per_1000_puts": perThousand(pgSeconds),
            "total_cpu_s_per_1000_puts": perThousand(nodeSeconds + (pgSeconds.isNaN ? 0 : pgSeconds)),
            "refused_batches": tally.count("refused_measured"), "resent_batches": tally.count("resent"),
            "unmatched_acks": tally.count("unmatched_acks"),
            "errors": tally.count("errors"), "acks_checked": tally.count("acks_checked"),
            "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? group.syncShutdownGracefully()
    }
}

/// `fill`: writes `--records` new keys as fast as the cluster takes them, each batch sent to
/// the owner of its keys, at APPLIED (acknowledged once in the owner's memory; the
/// write-behind persists them afterwards), then exits.
struct Fill: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Loads N records into a cluster, routed by owner.")

    @Option var url: String
    @Option var token: String
    @Option var records: Int = 1_000_000
    @Option(name: .customLong("connections-per-node")) var connectionsPerNode: Int = 4
    @Option(name: .customLong("ops-per-batch")) var opsPerBatch: Int = 1000
    @Option(name: .customLong("value-bytes")) var valueBytes: Int = 64
    @Option var window: Int = 4
    @Option(name: .customLong("write-concern")) var writeConcern: String = "APPLIED"
    @Option(name: .customLong("map-name")) var mapName: String = "fill"
    @Option var threads: Int = 2

    func run() throws {
        guard let concern = WriteConcern(rawValue: writeConcern.uppercased()) else { throw ValidationError("unknown write concern \(writeConcern)") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let map = try fetchPartitionMap(group: group, url: url, token: token, tally: tally)
        let n = map.nodes.count
        let connections = connectionsPerNode * n
        // Each node gets its share of the keys (the share of partitions it owns, by largest
        // remainder), split evenly over its connections.
        let totalBatches = (records + opsPerBatch - 1) / opsPerBatch
        let exact = map.nodes.map { Double(totalBatches * map.partitionsOwned(by: $0)) / Double(PartitionFunction.partitionCount) }
        var perNode = exact.map { Int($0) }
        for i in exact.indices.sorted(by: { exact[$0] - Double(perNode[$0]) > exact[$1] - Double(perNode[$1]) })
        where perNode.reduce(0, +) < totalBatches { perNode[i] += 1 }
        var batchesPerConnection: [Int] = []
        for index in 0..<connections {
            let node = index % n, slot = index / n
            batchesPerConnection.append(perNode[node] / connectionsPerNode + (slot < perNode[node] % connectionsPerNode ? 1 : 0))
        }
        let total = batchesPerConnection.reduce(0, +) * opsPerBatch
        let auth = authFrame(token: token)
        let measuring = RunFlag(), stopping = RunFlag()
        measuring.set()
        let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
        let (opsPerBatch, valueBytes, mapName, owners, window) = (self.opsPerBatch, self.valueBytes, self.mapName, map.owners, self.window)
        let start = Date()
        for index in 0..<connections {
            let endpoint = try Endpoint(url: map.websocket[map.nodes[index % n]]!)
            let batches = batchesPerConnection[index]
            connect(group: group, endpoint: endpoint, source: nil, index: index) {
                let frames = RoutedFrames(
                    connection: 50_000 + index, opsPerBatch: opsPerBatch, valueBytes: valueBytes, mapName: mapName, writeConcern: concern,
                    nowMillis: nowMillis, owners: owners, target: index % n)
                return RoutedLoadDriver(frames: frames, auth: auth, window: window, expected: concern, maxBatches: batches, tally: tally,
                                        measuring: measuring, stopping: stopping)
            }.whenFailure { error in
                tally.error("connect \(index): \(error)")
                tally.add("finished")
            }
        }
        var lastLog = Date()
        while tally.count("finished") < connections {
            sleep(seconds: 0.1)
            if Date().timeIntervalSince(lastLog) > 5 {
                lastLog = Date()
                log("fill: \(tally.count("fill_acked_ops")) of \(total) acknowledged")
            }
            if Date().timeIntervalSince(start) > 1800 { throw LoadError("fill did not finish in 30 minutes") }
        }
        let elapsed = Date().timeIntervalSince(start)
        let acked = tally.count("fill_acked_ops")
        emit([
            "figure": "cluster_fill", "nodes": n, "records_requested": records, "records_sent": total, "records_acked": acked,
            "write_concern": concern.rawValue, "connections": connections, "ops_per_batch": opsPerBatch, "value_bytes": valueBytes,
            "seconds": elapsed, "puts_per_s": Double(acked) / elapsed, "refused_batches": tally.count("refused"),
            "resent_batches": tally.count("resent"),
            "errors": tally.count("errors"), "first_errors": tally.firstErrors.withLock { $0 },
        ])
        try? group.syncShutdownGracefully()
        if acked != total { throw LoadError("only \(acked) of \(total) records acknowledged") }
    }
}
