import Dispatch
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bound of a graceful stop: once the shutdown signal arrives, the process exits after
/// `timeout` whatever is still running (a peer that never answers, a database that never
/// answers, a task that ignores cancellation).
///
/// Exiting then loses nothing acknowledged: a PERSISTED write is acknowledged only after its
/// flush committed, and the client re-sends what was not acknowledged. The timer runs on a
/// Dispatch queue, not in the task pool, so busy or blocked tasks cannot delay it.
struct ShutdownWatchdog: Service {
    let timeout: Duration
    let logger: Logger

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is ending for another reason, which has its own path
        }
        let logger = self.logger
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
            logger.warning("graceful stop did not finish within the shutdown timeout; exiting", metadata: ["timeout": "\(timeout)"])
            _exit(0)
        }
    }
}
