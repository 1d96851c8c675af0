import Logging
import ServiceLifecycle
import TopGunCore

/// Rows of partitions this node lost before it wrote them (design.md §6: a deposed owner's
/// writes merge into its successor): kept here and delivered to each partition's current
/// owner, where they merge like any write (CRDT merge: nothing picked, nothing dropped).
/// Delivery is retried until it succeeds or the node stops.
public actor DisplacedRows: Service {
    /// Hands rows (all of partitions `owner` owns) to `owner`; throws when it cannot.
    public typealias Delivery = @Sendable (_ rows: [StoredRecord]) async throws -> Void

    private var pending: [StoredRecord] = []
    private var delivery: Delivery?
    private var wake: AsyncStream<Void>.Continuation?
    private let logger: Logger
    private var metrics: ClusterMetrics?

    func report(to metrics: ClusterMetrics) { self.metrics = metrics }

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Where rows go (set once the cluster transport runs).
    public func deliver(through delivery: @escaping Delivery) {
        self.delivery = delivery
        wake?.yield()
    }

    public func handOver(_ rows: [StoredRecord]) {
        guard !rows.isEmpty else { return }
        pending += rows
        wake?.yield()
    }

    /// Rows not delivered yet.
    public var count: Int { pending.count }

    public func run() async {
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        await cancelWhenGracefulShutdown {
            var failures = 0
            for await _ in signals {
                while !Task.isCancelled, await self.attempt() == false {
                    failures += 1
                    try? await Task.sleep(for: .milliseconds(min(50 * (1 << min(failures, 6)), 2_000)))
                }
                failures = 0
            }
        }
        _ = await attempt()
        if !pending.isEmpty {
            logger.error("rows of lost partitions were not handed to their owners before the stop", metadata: ["rows": "\(pending.count)"])
        }
    }

    /// Delivers what is pending; true when nothing is left (or nothing can be done yet).
    private func attempt() async -> Bool {
        guard let delivery, !pending.isEmpty else { return true }
        let rows = pending
        pending = []
        do {
            try await delivery(rows)
            metrics?.displacedRows.increment(by: rows.count)
            logger.info("rows of lost partitions handed to their owners", metadata: ["rows": "\(rows.count)"])
            return true
        } catch {
            pending = rows + pending
            logger.warning("cannot hand rows of lost partitions to their owners yet", metadata: ["rows": "\(rows.count)", "error": "\(error)"])
            return false
        }
    }
}
