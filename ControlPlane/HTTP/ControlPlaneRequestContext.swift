import Foundation
import Hummingbird
import NIOCore

/// Hummingbird's per-request context for the control plane: the client address (for rate
/// limits on requests without a token) and the body limit.
public struct ControlPlaneRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies above this are `413 payload-too-large`.
    public var maxUploadSize: Int { ControlPlaneLimits.maximumBodyBytes }
}

/// The input limits of the contract.
public enum ControlPlaneLimits {
    public static let maximumBodyBytes = 262_144
    public static let defaultPageSize = 50
    public static let maximumPageSize = 200
    public static let maximumActiveKeysPerTenant = 10
    /// How long idempotency records are kept.
    public static let idempotencyLifetime: TimeInterval = 24 * 3600
    /// A claim never completed within this long is taken over (its process died).
    public static let idempotencyStaleAfter: TimeInterval = 60
}
