import Tenancy

/// Turns a token into a request context at the edge (WebSocket `AUTH`, HTTP Bearer).
public protocol Authenticator: Sendable {
    func authenticate(token: String, requestId: String) async -> Result<RequestContext, RefusedToken>
}
