/// Who is asking: resolved once at the edge from a verified token, then passed to every
/// handler. Nothing below the edge accepts a bare map name without one.
public struct RequestContext: Sendable, Equatable {
    public var tenant: TenantID
    /// The token's `sub`.
    public var principal: String
    public var roles: [String]
    /// Correlates logs and errors of one connection or HTTP request.
    public var requestId: String
    /// The signing key the token was verified with (revoking it ends the session).
    public var keyId: String

    public init(tenant: TenantID, principal: String, roles: [String], requestId: String, keyId: String) {
        self.tenant = tenant
        self.principal = principal
        self.roles = roles
        self.requestId = requestId
        self.keyId = keyId
    }
}
