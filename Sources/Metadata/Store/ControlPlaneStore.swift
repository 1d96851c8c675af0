import Foundation
import Tenancy

/// What the control plane needs from the metadata store beyond what the data plane reads:
/// listing, transactions that change several rows at once, the audit log, admin tokens,
/// idempotency records and usage.
///
/// Changes run in `write`: everything done through the transaction (the change, its audit
/// event, the idempotent response, the change-stream notification) commits or rolls back
/// together. Business rules (a deleted tenant is read-only, at most 10 active keys, version
/// numbering) live in the control plane, written once; the stores only read and write rows.
public protocol ControlPlaneStore: MetadataStore {
    /// Runs `body` in one transaction; commits if it returns, rolls back if it throws (the
    /// error is rethrown as is). Notifications published through the transaction are sent on
    /// commit only. On PostgreSQL `body` may be retried after a serialization failure, so it
    /// must not have effects outside the transaction.
    func write<Result: Sendable>(
        _ body: @Sendable (any MetadataTransaction) async throws -> Result
    ) async throws -> Result

    // MARK: Reads (each a consistent snapshot of its own)

    /// Tenants whose status is one of `statuses`, ordered by (created_at, id); a nil `plan`
    /// does not filter.
    func tenants(statuses: Set<Tenant.Status>, plan: String?, after: ListPosition?, limit: Int) async throws -> Page<Tenant>
    /// A tenant's keys ordered by (created_at, kid), only those with `status` if given.
    func signingKeys(tenant: TenantID, status: SigningKey.Status?, after: ListPosition?, limit: Int) async throws -> Page<SigningKey>
    func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion?
    /// The schemas in force, ordered by map name (`ListPosition.id` is the map; `time` unused).
    func currentSchemas(tenant: TenantID, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion>
    /// A map's versions, newest first (`ListPosition.id` is the version number as text).
    func schemaVersions(tenant: TenantID, map: String, after: ListPosition?, limit: Int) async throws -> Page<MapSchemaVersion>

    /// Audit events newest first, ordered by (time desc, id desc).
    func auditEvents(_ filter: AuditFilter, after: ListPosition?, limit: Int) async throws -> Page<AuditEvent>

    func adminToken(id: String) async throws -> AdminTokenRecord?
    func adminToken(valueHash: [UInt8]) async throws -> AdminTokenRecord?
    /// Admin tokens ordered by (created_at, id), only those in `status` at `now` if given
    /// (`expired`: not revoked and `expires_at <= now`; `active`: neither revoked nor expired).
    func adminTokens(status: AdminTokenRecord.Status?, now: Date, after: ListPosition?, limit: Int) async throws -> Page<AdminTokenRecord>
    /// Records a use of the token (the caller limits this to about once a minute).
    func touchAdminToken(id: String, at: Date) async throws

    // MARK: Usage

    /// One tenant's stored hours with `from <= periodStart < to`, oldest first.
    func usageHours(tenant: TenantID, from: Date, to: Date) async throws -> [UsageHour]
    /// Every tenant's stored hours with `from <= periodStart < to`, ordered by
    /// (periodStart, tenant), starting after `after` if given (the billing export's order).
    func usageHours(from: Date, to: Date, after: (periodStart: Date, tenant: TenantID)?, limit: Int) async throws -> [UsageHour]

    // MARK: Idempotency (outside `write`, committed at once)

    /// Claims `key` for `request`. A claim older than `staleAfter` seconds that was never
    /// completed (its process died) is taken over. Records expire `ttl` after their creation.
    func claimIdempotencyKey(_ key: IdempotencyKey, for request: IdempotentRequest, now: Date, staleAfter: TimeInterval) async throws -> IdempotencyClaim
    /// Stores the response of a request that changed nothing (e.g. a 404), completing its claim.
    func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws
    /// Frees a claim whose request will not be stored (a 5xx): a retry runs again.
    func releaseIdempotencyKey(_ key: IdempotencyKey) async throws
    /// Deletes expired records; returns how many.
    @discardableResult
    func purgeIdempotencyKeys(expiredBefore: Date) async throws -> Int
}

/// The rows one `ControlPlaneStore.write` can read and change. Valid only inside the closure.
public protocol MetadataTransaction: Sendable {
    /// Reads a tenant and (on PostgreSQL) locks its row until the end of the transaction, so
    /// that rules checked against it (key count, version numbers) hold at commit.
    func lockTenant(_ id: TenantID) async throws -> Tenant?
    /// Inserts a tenant and its quotas row (`StoredQuotas` version 1, following the plan).
    /// - Throws: `MetadataError.conflict` if the slug is taken.
    func insertTenant(_ tenant: Tenant) async throws
    /// Writes every mutable member (display name, plan, status, timestamps, reason).
    func updateTenant(_ tenant: Tenant) async throws

    func signingKey(kid: String) async throws -> SigningKey?
    func countActiveSigningKeys(tenant: TenantID) async throws -> Int
    /// Inserts a key as given (its kid generated by the caller); seals an HS256 secret.
    func insertSigningKey(_ key: SigningKey) async throws
    /// Marks the key revoked at `at`; returns it as stored afterwards (a second revocation
    /// keeps the first time). Nil if there is no such key.
    func revokeSigningKey(kid: String, at: Date) async throws -> SigningKey?

    func quotas(tenant: TenantID) async throws -> StoredQuotas?
    func saveQuotas(_ quotas: StoredQuotas) async throws

    func schemaHead(tenant: TenantID, map: String) async throws -> MapSchemaHead?
    func schemaVersion(tenant: TenantID, map: String, version: Int) async throws -> MapSchemaVersion?
    /// Inserts the version and makes it the one in force.
    func insertSchemaVersion(_ version: MapSchemaVersion) async throws
    /// Stops enforcement: no version is in force; the versions stay readable.
    func clearCurrentSchema(tenant: TenantID, map: String) async throws

    func insertAdminToken(_ token: AdminTokenRecord) async throws
    /// Marks the token revoked at `at` (keeping an earlier revocation); nil if unknown.
    func revokeAdminToken(id: String, at: Date) async throws -> AdminTokenRecord?

    func appendAudit(_ event: AuditEvent) async throws
    /// Completes a claimed idempotency key with the response, in this transaction.
    func completeIdempotencyKey(_ key: IdempotencyKey, with response: StoredResponse, expiresAt: Date) async throws
    /// Announces a change on the change stream when (and only if) the transaction commits.
    func publish(_ change: MetadataChange) async throws
}
