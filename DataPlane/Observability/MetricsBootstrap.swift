import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// swift-metrics has one global backend per process: bootstrap it once, whoever asks first
/// (the executable, or the first node a test starts), and serve its registry at `/metrics`.
public enum MetricsBootstrap {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    @discardableResult
    public static func prometheusRegistry() -> PrometheusCollectorRegistry {
        state.withLock { registry in
            if let registry { return registry }
            let created = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: created))
            registry = created
            return created
        }
    }
}
