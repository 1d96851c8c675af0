import Metadata
import Tenancy

/// The ready-made tenant of `topgun dev`: created on first start, found again on later
/// starts, so tokens and data survive restarts of the dev server.
public enum DevTenantSeed {
    public static let slug = "dev"

    /// The dev tenant and an active HS256 key of it, creating either when missing.
    public static func ensure(in metadata: any MetadataStore) async throws -> (Tenant, SigningKey) {
        let tenant: Tenant
        if let existing = try await metadata.tenant(slug: slug) {
            tenant = existing
        } else {
            tenant = try await metadata.createTenant(slug: slug, displayName: "Development", plan: "free")
        }
        if let key = try await metadata.signingKeys(tenant: tenant.id).first(where: { $0.status == .active && $0.algorithm == .hs256 }) {
            return (tenant, key)
        }
        let key = try await metadata.createSigningKey(
            tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        return (tenant, key)
    }
}
