import Foundation
import Tenancy

/// A change that data-plane nodes must apply without a restart. Published on the store's
/// change stream in the same transaction as the change itself.
public enum MetadataChange: Sendable, Equatable {
    /// A tenant was created, updated, suspended, resumed or deleted: re-read it.
    case tenant(TenantID)
    /// A signing key was created or revoked: re-read it.
    case signingKey(kid: String, tenant: TenantID)
    /// A tenant's quotas were replaced or reset, or moved with its plan: re-read them.
    case quota(TenantID)
    /// A map's schema was put or deleted: re-read it.
    case schema(tenant: TenantID, map: String)
    /// The stream was interrupted (e.g. the PostgreSQL connection dropped and came back):
    /// anything cached may be stale, re-read everything.
    case resynchronize
}

/// Why a metadata operation failed, as a value the callers can map to wire or HTTP errors.
public enum MetadataError: Error, Sendable, Equatable {
    case notFound(String)
    /// A unique value (slug, kid) is taken.
    case conflict(String)
    case invalid(String)
    /// The database cannot be reached or refused the operation.
    case unavailable(String)
}

/// The metadata both planes share (design.md §5): tenants and their signing keys for now;
/// the control plane extends it with quotas, schemas, usage, audit log and admin tokens.
///
/// Two implementations pass one test suite: PostgreSQL (production) and SQLite (embedded,
/// `topgun dev`).
///
/// Every store is also a `SigningKeyResolver`, so `TokenVerifier(resolver: store)` works
/// directly (the data plane puts a cache in between).
public protocol MetadataStore: SigningKeyResolver {
    /// Applies pending migrations (idempotent; safe when several processes run it at once).
    func migrate() async throws

    func createTenant(slug: String, displayName: String, plan: String) async throws -> Tenant
    func tenant(id: TenantID) async throws -> Tenant?
    func tenant(slug: String) async throws -> Tenant?
    func setTenantStatus(_ id: TenantID, _ status: Tenant.Status) async throws -> Tenant

    /// Stores a key under a fresh, globally unique `kid`. HS256 secrets must be at least 32 bytes.
    func createSigningKey(tenant: TenantID, algorithm: SigningAlgorithm, material: SigningKey.Material) async throws -> SigningKey
    func signingKey(kid: String) async throws -> SigningKey?
    func signingKeys(tenant: TenantID) async throws -> [SigningKey]
    func revokeSigningKey(kid: String) async throws -> SigningKey

    // MARK: What the data plane enforces and meters (design.md §7)

    /// The quotas in force for a tenant; nil if the tenant does not exist.
    func quotas(tenant: TenantID) async throws -> TenantQuotas?
    /// The map's schema version in force, nil if none (never put, or deleted).
    func currentSchema(tenant: TenantID, map: String) async throws -> MapSchemaVersion?
    /// Records `kind` as the CRDT of a tenant's map unless one is recorded already, and
    /// returns the recorded one: every node asking about one map gets the same answer, the
    /// first writer's, however their first writes raced.
    func recordMapKind(tenant: TenantID, map: String, kind: MapKind) async throws -> MapKind
    /// The names of the tenant's maps with a recorded kind: every map any node has written to.
    func recordedMaps(tenant: TenantID) async throws -> [String]
    /// Applies a data-plane node's usage counts (see `UsageFlush`); idempotent by `flush.id`.
    func recordUsage(_ flush: UsageFlush) async throws

    /// Changes made by any process from now on. Each call returns a new stream.
    func changes() -> AsyncStream<MetadataChange>

    /// Closes connections; the store is unusable afterwards.
    func shutdown() async
}
