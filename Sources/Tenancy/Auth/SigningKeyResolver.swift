/// Where the verifier looks up keys and tenants. The metadata store conforms; the data plane
/// wraps it in a cache that the store's change stream invalidates.
public protocol SigningKeyResolver: Sendable {
    /// The key with this `kid`, whatever its status, or nil if there is none.
    func signingKey(kid: String) async throws -> SigningKey?
    /// The tenant with this id, whatever its status, or nil if there is none.
    func tenant(id: TenantID) async throws -> Tenant?
}
