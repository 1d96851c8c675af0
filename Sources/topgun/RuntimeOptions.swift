import ArgumentParser
import DataPlane
import Foundation
import Logging

/// Options several commands share. Each falls back to a `TOPGUN_*` environment variable,
/// then to its default (design.md §1: flags, then environment, then defaults).
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env TOPGUN_LOG_LEVEL; default info).")
    var logLevel: String?

    func bootstrap() -> Logger {
        let text = logLevel ?? Environment.value("TOPGUN_LOG_LEVEL") ?? "info"
        let level = Logger.Level(rawValue: text.lowercased()) ?? .info
        LoggingBootstrap.bootstrap(level: level)
        var logger = Logger(label: "topgun")
        logger.logLevel = level
        return logger
    }
}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}

/// Logs go to stderr, so `--json` output on stdout stays one clean line. Called once, at the
/// start of the one command a process runs.
enum LoggingBootstrap {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Prints one line on stderr and exits with status 1.
func exitWithError(_ message: String) -> Never {
    FileHandle.standardError.write(Data("topgun: \(message)\n".utf8))
    exit(1)
}

/// `TOPGUN_STORAGE_METER_SECONDS`: how often stored bytes are measured (default 60; tests
/// shorten it).
enum StorageMeterOption {
    static func interval() -> Duration {
        .seconds(Environment.value("TOPGUN_STORAGE_METER_SECONDS").flatMap(Int.init).map { max(1, $0) } ?? 60)
    }
}

/// The per-connection inbound rate limit (protocol.md §5: 20,000 ops/s sustained, burst
/// twice that, as the reference server's defaults). A guard against one connection
/// flooding the node, not a tenant quota (those come from the control plane).
struct ConnectionLimitOptions: ParsableArguments {
    @Option(help: "Ops per second one connection may send, sustained; bursts may reach twice that (env TOPGUN_CONNECTION_OPS_PER_SECOND; default 20000).")
    var connectionOpsPerSecond: Double?

    /// (sustained, burst)
    func resolved() -> (perSecond: Double, burst: Double) {
        let rate = connectionOpsPerSecond ?? Environment.value("TOPGUN_CONNECTION_OPS_PER_SECOND").flatMap(Double.init) ?? 20_000
        guard rate.isFinite, rate > 0 else { exitWithError("--connection-ops-per-second must be a positive number") }
        return (rate, rate * 2)
    }
}

/// Bounds of one node: what it holds per client and how long closing, stopping and noticing
/// an outage may take (README, "What a crash may lose"). Each has an environment variable;
/// durations are in seconds and may be fractional.
struct NodeBoundsOptions: ParsableArguments {
    @Option(help: "Bytes queued for one client at most before it is closed with 1013 (env TOPGUN_OUTBOUND_QUEUE_BYTES; default 4194304).")
    var outboundQueueBytes: Int?

    @Option(help: "Seconds a peer has to answer the server's close frame before its TCP connection is closed (env TOPGUN_CLOSE_TIMEOUT; default 3).")
    var closeTimeout: Double?

    @Option(help: "Seconds a response may wait for a client that does not read before it is closed with 1013 (env TOPGUN_SLOW_CONSUMER_TIMEOUT; default 30).")
    var slowConsumerTimeout: Double?

    @Option(help: "Seconds a connection may stay unauthenticated (env TOPGUN_AUTH_TIMEOUT; default 10).")
    var authTimeout: Double?

    @Option(help: "Seconds a graceful stop (SIGTERM, SIGINT) may take: closing sockets and draining writes, then the process exits (env TOPGUN_SHUTDOWN_TIMEOUT; default 10).")
    var shutdownTimeout: Double?

    @Option(help: "Seconds an op's timestamp may be ahead of this node's clock; further ahead it is rejected for good (env TOPGUN_MAX_CLOCK_DRIFT; default 300).")
    var maxClockDrift: Double?

    @Option(help: "Seconds within which /ready reports a storage outage (env TOPGUN_READINESS_DEADLINE; default 2).")
    var readinessDeadline: Double?

    @Option(help: "Client connections (WebSocket or HTTP) held at once; more are answered 503 (env TOPGUN_MAX_CONNECTIONS; default: what the open-files limit allows, which the node raises to its hard limit at start).")
    var maxConnections: Int?

    func apply(to configuration: inout DataPlaneConfiguration) {
        if let connections = maxConnections ?? Environment.value("TOPGUN_MAX_CONNECTIONS").flatMap(Int.init) {
            guard connections >= 1 else { exitWithError("--max-connections must be at least 1") }
            configuration.maxConnections = connections
        }
        if let bytes = outboundQueueBytes ?? Environment.value("TOPGUN_OUTBOUND_QUEUE_BYTES").flatMap(Int.init) {
            guard bytes >= 64 * 1024 else { exitWithError("--outbound-queue-bytes must be at least 65536") }
            configuration.outboundQueueBytes = bytes
        }
        if let close = Self.seconds(closeTimeout, "TOPGUN_CLOSE_TIMEOUT", flag: "--close-timeout") { configuration.closeTimeout = close }
        if let stall = Self.seconds(slowConsumerTimeout, "TOPGUN_SLOW_CONSUMER_TIMEOUT", flag: "--slow-consumer-timeout") {
            configuration.slowConsumerTimeout = stall
        }
        if let auth = Self.seconds(authTimeout, "TOPGUN_AUTH_TIMEOUT", flag: "--auth-timeout") { configuration.authDeadline = auth }
        if let shutdown = Self.seconds(shutdownTimeout, "TOPGUN_SHUTDOWN_TIMEOUT", flag: "--shutdown-timeout") {
            configuration.shutdownTimeout = shutdown
        }
        if let drift = Self.seconds(maxClockDrift, "TOPGUN_MAX_CLOCK_DRIFT", flag: "--max-clock-drift") { configuration.maxClockDrift = drift }
        if let deadline = Self.seconds(readinessDeadline, "TOPGUN_READINESS_DEADLINE", flag: "--readiness-deadline") {
            configuration.readinessDeadline = deadline
        }
    }

    static func seconds(_ flag: Double?, _ variable: String, flag name: String) -> Duration? {
        guard let value = flag ?? Environment.value(variable).flatMap(Double.init) else { return nil }
        // Up to ten years (a drift bound may be that large; the others never are).
        guard value.isFinite, value > 0, value <= 315_360_000 else { exitWithError("\(name) must be a number of seconds above 0") }
        return .milliseconds(Int64((value * 1000).rounded()))
    }
}

/// How a data-plane node joins a cluster. A node joins one when it has a cluster port.
struct ClusterOptions: ParsableArguments {
    @Option(help: "Port for the other nodes of the cluster; 0 picks a free one. Given, the node joins the cluster of its PostgreSQL database (env TOPGUN_CLUSTER_PORT; without it the node runs alone and must be the only one on its database).")
    var clusterPort: Int?

    @Option(help: "Interface of the cluster port (env TOPGUN_CLUSTER_HOST; default --host).")
    var clusterHost: String?

    @Option(help: "Host name other nodes and clients reach this node at (env TOPGUN_ADVERTISE_HOST; default --host).")
    var advertiseHost: String?

    @Option(help: "Seconds a node's lease lives without a heartbeat; a node silent this long is gone and its partitions fail over (env TOPGUN_LEASE_TIMEOUT; default 5).")
    var leaseTimeout: Double?

    @Option(help: "Seconds between heartbeats, at most a third of --lease-timeout (env TOPGUN_HEARTBEAT_INTERVAL; default 1).")
    var heartbeatInterval: Double?

    @Option(help: "Backups per partition (env TOPGUN_BACKUP_COUNT; default 1).")
    var backupCount: Int?

    @Option(help: "Seconds a graceful stop may spend handing partitions to other nodes (env TOPGUN_LEAVE_TIMEOUT; default 60).")
    var leaveTimeout: Double?

    @Option(help: "Partitions that move between nodes at once (env TOPGUN_MAX_MIGRATIONS; default 16).")
    var maxMigrations: Int?

    /// The settings, or nil when the node runs alone.
    func resolved(node: String, host: String) -> ClusterSettings? {
        guard let port = clusterPort ?? Environment.value("TOPGUN_CLUSTER_PORT").flatMap(Int.init) else { return nil }
        guard (0...65535).contains(port) else { exitWithError("--cluster-port must be between 0 and 65535") }
        var settings = ClusterSettings(
            node: NodeID(node), clusterHost: clusterHost ?? Environment.value("TOPGUN_CLUSTER_HOST") ?? host, clusterPort: port,
            advertiseHost: advertiseHost ?? Environment.value("TOPGUN_ADVERTISE_HOST") ?? host)
        guard settings.node.isValid else { exitWithError("invalid node id '\(node)': use 1 to 64 letters, digits, '.', '_' or '-'") }
        if let lease = NodeBoundsOptions.seconds(leaseTimeout, "TOPGUN_LEASE_TIMEOUT", flag: "--lease-timeout") { settings.leaseDuration = lease }
        if let beat = NodeBoundsOptions.seconds(heartbeatInterval, "TOPGUN_HEARTBEAT_INTERVAL", flag: "--heartbeat-interval") {
            settings.heartbeatInterval = beat
        } else {
            settings.heartbeatInterval = min(settings.heartbeatInterval, settings.leaseDuration / 3)
        }
        guard settings.heartbeatInterval * 3 <= settings.leaseDuration else {
            exitWithError("--heartbeat-interval must be at most a third of --lease-timeout")
        }
        if let count = backupCount ?? Environment.value("TOPGUN_BACKUP_COUNT").flatMap(Int.init) {
            guard (0...6).contains(count) else { exitWithError("--backup-count must be between 0 and 6") }
            settings.backupCount = count
        }
        if let leave = NodeBoundsOptions.seconds(leaveTimeout, "TOPGUN_LEAVE_TIMEOUT", flag: "--leave-timeout") { settings.leaveTimeout = leave }
        if let moves = maxMigrations ?? Environment.value("TOPGUN_MAX_MIGRATIONS").flatMap(Int.init) {
            guard (1...271).contains(moves) else { exitWithError("--max-migrations must be between 1 and 271") }
            settings.maxConcurrentMigrations = moves
        }
        return settings
    }
}
