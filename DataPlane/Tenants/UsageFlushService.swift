import Foundation
import Logging
import Metadata
import ServiceLifecycle

/// Writes the usage meter's counts to the metadata store every few seconds. Each flush has
/// an id of its own (node, start time, sequence): a flush that failed is retried under the
/// same id, and the store applies an id once, so a retried flush counts once. A graceful
/// shutdown flushes one last time.
public struct UsageFlushService: Service {
    let meter: UsageMeter
    let metadata: any MetadataStore
    let nodeId: String
    let interval: Duration
    let logger: Logger
    /// Runs before each drain (the node collects the bytes its sessions sent).
    let beforeDrain: @Sendable () -> Void

    /// Flushes waiting to be retried are kept up to this many; older ones are dropped (logged).
    static let maximumPending = 720

    public init(
        meter: UsageMeter, metadata: any MetadataStore, nodeId: String, interval: Duration = .seconds(5), logger: Logger,
        beforeDrain: @escaping @Sendable () -> Void = {}
    ) {
        self.beforeDrain = beforeDrain
        self.meter = meter
        self.metadata = metadata
        self.nodeId = nodeId
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let flusher = Flusher(
            meter: meter, metadata: metadata, beforeDrain: beforeDrain, runID: "\(nodeId):\(Int64(Date().timeIntervalSince1970 * 1000))", logger: logger)
        let interval = interval
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await flusher.flushOnce()
            }
        }
        // The last counts before a graceful stop.
        await flusher.flushOnce()
    }

    /// The flushes not yet written, in order.
    actor Flusher {
        let meter: UsageMeter
        let metadata: any MetadataStore
        let beforeDrain: @Sendable () -> Void
        let runID: String
        let logger: Logger
        private var sequence = 0
        private var pending: [UsageFlush] = []

        init(meter: UsageMeter, metadata: any MetadataStore, beforeDrain: @escaping @Sendable () -> Void, runID: String, logger: Logger) {
            self.meter = meter
            self.beforeDrain = beforeDrain
            self.metadata = metadata
            self.runID = runID
            self.logger = logger
        }

        func flushOnce() async {
            beforeDrain()
            let deltas = meter.drain()
            if !deltas.isEmpty {
                sequence += 1
                pending.append(UsageFlush(id: "\(runID):\(sequence)", deltas: deltas))
            }
            if pending.count > UsageFlushService.maximumPending {
                let dropped = pending.count - UsageFlushService.maximumPending
                pending.removeFirst(dropped)
                logger.error("usage flushes dropped after failing for too long", metadata: ["count": "\(dropped)"])
            }
            while let flush = pending.first {
                do {
                    try await metadata.recordUsage(flush)
                    pending.removeFirst()
                } catch {
                    logger.warning("usage flush failed; will retry", metadata: ["flush": "\(flush.id)", "error": "\(error)"])
                    return
                }
            }
        }
    }
}
