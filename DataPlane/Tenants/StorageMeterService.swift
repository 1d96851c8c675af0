import Logging
import ServiceLifecycle

/// Measures each tenant's stored bytes about once a minute, for the `max_storage_bytes`
/// quota and the usage figure `storage_bytes`. A scan of the records table: cheap for the
/// datasets one node holds today; a larger deployment would keep running totals instead.
public struct StorageMeterService: Service {
    let storage: any ServerStorage
    let policies: TenantPolicies
    let usage: UsageMeter
    let interval: Duration
    let logger: Logger

    public init(storage: any ServerStorage, policies: TenantPolicies, usage: UsageMeter, interval: Duration = .seconds(60), logger: Logger) {
        self.storage = storage
        self.policies = policies
        self.usage = usage
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait = Duration.seconds(2)
            while !Task.isCancelled {
                try? await Task.sleep(for: wait)
                wait = interval
                do {
                    let bytes = try await storage.storedBytes()
                    policies.storedBytesMeasured(bytes)
                    usage.storageMeasured(bytes)
                } catch {
                    logger.warning("cannot measure stored bytes; will retry", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
