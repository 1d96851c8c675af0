import Metadata
import Tenancy

/// Turns a token into a request context at the edge (WebSocket `AUTH`, HTTP Bearer).
public protocol Authenticator: Sendable {
    func authenticate(token: String, requestId: String) async -> Result<RequestContext, RefusedToken>
    /// A key or tenant changed in the metadata store: drop whatever is cached about it.
    func metadataChanged(_ change: MetadataChange) async
}

extension Authenticator {
    public func metadataChanged(_ change: MetadataChange) async {}
}
