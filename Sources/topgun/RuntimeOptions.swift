import ArgumentParser
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
