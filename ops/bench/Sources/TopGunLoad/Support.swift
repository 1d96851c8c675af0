import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TopGunCore

/// Counters and samples shared by the drivers of one run (drivers live on event loops; the
/// main thread reads these).
final class Tally: Sendable {
    let counters = Mutex<[String: Int]>([:])
    let samples = Mutex<[UInt64]>([])
    /// A second set of samples (latency: the time to the `QUERY_UPDATE`, what changes a
    /// subscriber's result, as against the first delivery of any kind).
    let otherSamples = Mutex<[UInt64]>([])
    /// A third set (latency: the time to the `SERVER_EVENT`).
    let eventSamples = Mutex<[UInt64]>([])
    let firstErrors = Mutex<[String]>([])
    /// Set once a run's figures are taken (closes after it are the generator's own).
    let finished = RunFlag()
    /// Samples split into four groups (e.g. by quarter of a run), to show drift over time.
    let quarters = Mutex<[[UInt64]]>([[], [], [], []])

    func addQuarterSample(_ quarter: Int, _ value: UInt64) {
        quarters.withLock { $0[max(0, min(3, quarter))].append(value) }
    }

    func add(_ name: String, _ n: Int = 1) {
        counters.withLock { $0[name, default: 0] += n }
    }

    func count(_ name: String) -> Int { counters.withLock { $0[name] ?? 0 } }

    func error(_ text: String) {
        add("errors")
        firstErrors.withLock { if $0.count < 5 { $0.append(text) } }
    }

    func addSamples(_ values: [UInt64]) {
        guard !values.isEmpty else { return }
        samples.withLock { $0.append(contentsOf: values) }
    }
}

/// A flag the main thread sets and event loops read.
final class RunFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

func sleep(seconds: Double) {
    Thread.sleep(forTimeInterval: seconds)
}

/// Waits until `condition` holds or `timeout` passes; returns whether it held.
@discardableResult
func wait(timeout: Double, poll: Double = 0.01, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        sleep(seconds: poll)
    }
    return condition()
}

/// `q` in 0...1 of sorted nanosecond samples, in milliseconds.
func percentileMs(_ sorted: [UInt64], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
    return Double(sorted[rank]) / 1e6
}

/// One JSON line on stdout: numbers, strings, booleans.
func emit(_ fields: KeyValuePairs<String, Any>) {
    var parts: [String] = []
    for (key, value) in fields {
        let text: String
        switch value {
        case let v as Double: text = v.isFinite ? String(format: "%.3f", v) : "null"
        case let v as Int: text = String(v)
        case let v as Bool: text = v ? "true" : "false"
        case let v as String: text = jsonQuote(v)
        case let v as [String]: text = "[" + v.map(jsonQuote).joined(separator: ", ") + "]"
        case let v as [Double]: text = "[" + v.map { $0.isFinite ? String(format: "%.3f", $0) : "null" }.joined(separator: ", ") + "]"
        case let v as [Int]: text = "[" + v.map(String.init).joined(separator: ", ") + "]"
        default: text = jsonQuote("\(value)")
        }
        parts.append("\(jsonQuote(key)): \(text)")
    }
    print("{" + parts.joined(separator: ", ") + "}")
    fflush(stdout)
}

/// JSON string literal; the same escaper the server uses.
func jsonQuote(_ s: String) -> String {
    JavaScriptText.jsonString(s)
}

func log(_ text: String) {
    FileHandle.standardError.write(Data("[load] \(text)\n".utf8))
}

/// Opens `count` connections with at most `concurrency` handshakes in flight; `settled(i)`
/// says whether connection i has finished its handshake (or failed). Source addresses
/// rotate over 127.0.0.1 ... 127.0.0.<sources> (each has its own ~28k ephemeral ports).
func openConnections(
    count: Int, concurrency: Int, sources: Int, group: any EventLoopGroup, endpoint: Endpoint, tally: Tally,
    settledCount: () -> Int, driver: @escaping @Sendable (Int) -> any WSDriver
) {
    openConnections(
        count: count, concurrency: concurrency, sources: sources, group: group, endpoints: [endpoint], tally: tally,
        settledCount: settledCount, driver: driver)
}

/// The same, connection i to `endpoints[i % endpoints.count]` (e.g. the nodes of a cluster).
func openConnections(
    count: Int, concurrency: Int, sources: Int, group: any EventLoopGroup, endpoints: [Endpoint], tally: Tally,
    settledCount: () -> Int, driver: @escaping @Sendable (Int) -> any WSDriver
) {
    precondition(!endpoints.isEmpty)
    var launched = 0
    while launched < count {
        while launched - settledCount() >= concurrency { sleep(seconds: 0.001) }
        let index = launched
        let source: String? = sources > 1 ? "127.0.0.\(1 + index % sources)" : nil
        connect(group: group, endpoint: endpoints[index % endpoints.count], source: source, index: index, driver: { driver(index) })
            .whenFailure { error in
                tally.error("connect \(index): \(error)")
                tally.add("connect_failed")
            }
        launched += 1
    }
}

/// VmRSS of this process in KiB.
func selfRSSKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
    return -1
}

/// utime + stime of a process in clock ticks (1/100 s), from /proc/PID/stat.
func processTicks(_ pid: Int?) -> Int? {
    guard let pid, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
}

/// CPU cores a process used between two samples.
func coresUsed(_ before: Int?, _ after: Int?, seconds: Double) -> Double {
    guard let before, let after, seconds > 0 else { return .nan }
    return Double(after - before) / 100 / seconds
}
