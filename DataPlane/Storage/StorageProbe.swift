import Logging
import ServiceLifecycle
import Synchronization

/// Whether the record storage answers, found out on the probe's own schedule rather than
/// by the next write: with nothing to flush, an outage would otherwise go unnoticed (and
/// `/ready` keep answering 200) until a client's write hung on it.
///
/// The probe asks the storage (`isReachable`, a `SELECT 1` through the pool) every quarter of
/// `deadline`, each attempt bounded by half of it, so an outage is reported within `deadline`
/// and a recovery within about as long. Reachable until the first probe says otherwise.
public final class StorageProbe: Service, Sendable {
    let storage: any ServerStorage
    let deadline: Duration
    let logger: Logger
    private let reachable = Atomic<Bool>(true)

    public init(storage: any ServerStorage, deadline: Duration, logger: Logger) {
        self.storage = storage
        self.deadline = deadline
        self.logger = logger
    }

    /// The outcome of the latest probe.
    public var isReachable: Bool { reachable.load(ordering: .acquiring) }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.probeOnce()
                try? await Task.sleep(for: self.deadline / 4)
            }
        }
    }

    /// One probe; returns its outcome.
    @discardableResult
    func probeOnce() async -> Bool {
        let storage = self.storage
        let answered = (try? await withStorageTimeout(deadline / 2) { await storage.isReachable() }) ?? false
        let before = reachable.exchange(answered, ordering: .acquiringAndReleasing)
        if before != answered {
            if answered {
                logger.notice("storage reachable again")
            } else {
                logger.error("storage unreachable: the node reports not ready", metadata: ["deadline": "\(deadline)"])
            }
        }
        return answered
    }
}
