import Foundation
import Logging
import Metadata
import ServiceLifecycle

/// Deletes idempotency records older than their 24 hours (they may hold a sealed one-time
/// secret, which must not outlive its promise).
public struct IdempotencyPurgeService: Service {
    let store: any ControlPlaneStore
    let logger: Logger
    let interval: Duration

    public init(store: any ControlPlaneStore, logger: Logger, interval: Duration = .seconds(600)) {
        self.store = store
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let purged = try await store.purgeIdempotencyKeys(expiredBefore: Date())
                    if purged > 0 { logger.info("purged expired idempotency records", metadata: ["count": "\(purged)"]) }
                } catch {
                    logger.warning("idempotency purge failed; will retry", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
