import Metadata
import Tenancy

/// The ready-made tenant of `topgun dev`: created on first start, found again on later
/// starts, so tokens and data survive restarts of the dev server. It is created on the
/// `enterprise` plan with its quotas raised to the largest the contract allows, so that
/// development and load tests are not throttled; an operator can lower them through the
/// control plane like any tenant's.
public enum DevTenantSeed {
    public static let slug = "dev"

    /// The largest value of each quota the control plane accepts.
    public static let limits = QuotaLimits(
        maxConnections: 10_000_000, maxOperationsPerSecond: 10_000_000, maxStorageBytes: 9_007_199_254_740_991,
        maxMaps: 1_000_000, maxMessageBytes: 2_097_152, maxLiveSubscriptions: 10_000_000)

    /// The dev tenant and an active HS256 key of it, creating either when missing.
    public static func ensure(in metadata: any MetadataStore) async throws -> (Tenant, SigningKey) {
        let tenant: Tenant
        if let existing = try await metadata.tenant(slug: slug) {
            tenant = existing
        } else {
            tenant = try await metadata.createTenant(slug: slug, displayName: "Development", plan: Plan.enterprise.rawValue)
            if let store = metadata as? any ControlPlaneStore {
                let id = tenant.id
                let now = tenant.createdAt
                let limits = Self.limits
                try await store.write { transaction in
                    let version = (try await transaction.quotas(tenant: id)?.version ?? 0) + 1
                    try await transaction.saveQuotas(StoredQuotas(tenant: id, custom: limits, version: version, updatedAt: now))
                }
            }
        }
        if let key = try await metadata.signingKeys(tenant: tenant.id).first(where: { $0.status == .active && $0.algorithm == .hs256 }) {
            return (tenant, key)
        }
        let key = try await metadata.createSigningKey(
            tenant: tenant.id, algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()))
        return (tenant, key)
    }
}
