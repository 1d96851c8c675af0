import Logging
import ServiceLifecycle
import Tenancy

/// Measures each tenant's stored bytes about once a minute, for the `max_storage_bytes`
/// quota and the usage figure `storage_bytes`. A scan of the records table: cheap for the
/// datasets one node holds today; a larger deployment would keep running totals instead.
public struct StorageMeterService: Service {
    let measure: @Sendable () async throws -> [TenantID: Int64]
    let policies: TenantPolicies
    let usage: UsageMeter
    let interval: Duration
    let logger: Logger

    /// `measure`: each tenant's stored bytes (`ServerStorage.storedBytes`, or the maps' own
    /// measure when records live in memory only).
    public init(
        measure: @escaping @Sendable () async throws -> [TenantID: Int64], policies: TenantPolicies, usage: UsageMeter,
        interval: Duration = .seconds(60), logger: Logger
    ) {
        self.measure = measure
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
                    let bytes = try await measure()
                    policies.storedBytesMeasured(bytes)
                    usage.storageMeasured(bytes)
                } catch {
                    logger.warning("cannot measure stored bytes; will retry", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
