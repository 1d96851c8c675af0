import CoreMetrics
import Metrics
import Synchronization

/// The node's metrics, through swift-metrics (served as Prometheus text at `/metrics`).
/// Labels never carry tenant ids or map names: series stay bounded and no tenant can read
/// another's names off the metrics page.
public final class DataPlaneMetrics: Sendable {
    /// First: stored properties initialise in order, and handles made before the backend is
    /// bootstrapped would stay no-ops forever.
    private let registry = MetricsBootstrap.prometheusRegistry()
    private let messagesIn = Mutex<[String: Counter]>([:])
    private let errors = Mutex<[Int64: Counter]>([:])
    public let messagesOut = Counter(label: "topgun_messages_out_total")
    public let connections = Meter(label: "topgun_connections")
    public let connectionsTotal = Counter(label: "topgun_connections_opened_total")
    /// Sockets refused at the node's connection capacity, and that capacity.
    public let connectionsRefused = Counter(label: "topgun_connections_refused_total")
    public let connectionsLimit = Gauge(label: "topgun_connections_limit")
    public let opsApplied = Counter(label: "topgun_ops_applied_total")
    public let opBatchLatency = Timer(label: "topgun_op_batch_duration_seconds", preferredDisplayUnit: .seconds)
    public let writeBehindPending = Gauge(label: "topgun_write_behind_pending")
    public let decodeErrors = Counter(label: "topgun_decode_errors_total")

    public init() {}

    public func messageIn(type: String) {
        let counter = messagesIn.withLock { counters in
            if let counter = counters[type] { return counter }
            let counter = Counter(label: "topgun_messages_in_total", dimensions: [("type", type)])
            counters[type] = counter
            return counter
        }
        counter.increment()
    }

    /// Values that broke their map's schema, by enforcement mode (`warn`: accepted; `strict`: refused).
    public func schemaViolation(mode: String) {
        (mode == "strict" ? strictSchemaViolations : warnSchemaViolations).increment()
    }

    private let warnSchemaViolations = Counter(label: "topgun_schema_violations_total", dimensions: [("mode", "warn")])
    private let strictSchemaViolations = Counter(label: "topgun_schema_violations_total", dimensions: [("mode", "strict")])

    public func error(code: Int64) {
        let counter = errors.withLock { counters in
            if let counter = counters[code] { return counter }
            let counter = Counter(label: "topgun_errors_total", dimensions: [("code", String(code))])
            counters[code] = counter
            return counter
        }
        counter.increment()
    }
}
