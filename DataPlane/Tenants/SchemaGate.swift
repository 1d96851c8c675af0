import Logging
import Tenancy
import TopGunCore
import TopGunWire

/// A map's schema applied to one written value (design.md §7), the one function every write
/// path calls: ops over WebSocket and HTTP sync, OR-Map ops, OR-Map pushes. `warn` counts and
/// logs the violation and lets the value through; `strict` refuses it for good, naming the
/// JSON path; tombstones are never checked (callers pass values only).
public struct SchemaGate: Sendable {
    /// A value `strict` refuses.
    public struct Rejection: Sendable, Equatable {
        public var map: String
        public var version: Int
        /// The JSON pointer of the part at fault ("" for the whole value).
        public var pointer: String
        public var message: String

        /// As one op's rejection for good (`OP_ACK.results`, `OP_REJECTED` 422).
        public var opOutcome: OpOutcome {
            .rejected(.schemaViolation, "value violates schema version \(version) of map '\(map)' at \(pointer.isEmpty ? "/" : pointer): \(message)")
        }

        /// As the `ERROR` 422 that refuses a whole push, naming the key.
        public func errorMessage(key: String) -> ErrorMessage {
            .make(
                .schemaViolation, "value of key '\(key)' violates schema version \(version) of map '\(map)': \(message)",
                details: ["mapName": .string(map), "path": .string(pointer), "schemaVersion": .int(Int64(version))])
        }
    }

    let metrics: DataPlaneMetrics
    let logger: Logger

    public init(metrics: DataPlaneMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// nil when the value goes on to the map.
    public func check(_ value: DataValue, policy: TenantPolicies.SchemaPolicy, map: String, tenant: TenantID) -> Rejection? {
        guard policy.enforcement != .off, let violation = policy.schema.validate(value) else { return nil }
        metrics.schemaViolation(mode: policy.enforcement.rawValue)
        guard policy.enforcement == .strict else {
            logger.notice("schema violation accepted (warn mode)", metadata: [
                "tenant": "\(tenant)", "map": "\(map)", "version": "\(policy.version)", "path": "\(violation.pointer)",
            ])
            return nil
        }
        return Rejection(map: map, version: policy.version, pointer: violation.pointer, message: violation.message)
    }
}
