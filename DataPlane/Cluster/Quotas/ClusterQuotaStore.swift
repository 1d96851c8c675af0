import Tenancy
import TopGunCore

/// Where the nodes of a cluster share their tenants' quota counts (`ClusterQuotaService`):
/// PostgreSQL in production (`PostgresClusterStore`), fakes in tests.
protocol ClusterQuotaStore: Sendable {
    /// Writes `node`'s counts for `second` and returns every live member's reports of the
    /// same tenants for `second - 10` through `second` (`node`'s own earlier ones included),
    /// with the tenants' connections on the other live nodes at their latest second.
    func exchange(node: NodeID, second: Int64, counts: [TenantID: ClusterTenantCounts]) async throws -> ClusterQuotaExchange

    /// Adds up to `wanted` slots of `kind` to what `node` holds (`holding`), keeping every
    /// live run's reservations for the tenant within `limit`, and writes the node's row as
    /// `holding` plus what it added, under its run `incarnation`; returns how many it added
    /// (0 when the limit is taken). Serialised per tenant and kind.
    func reserve(
        _ kind: ClusterSlotKind, tenant: TenantID, wanted: Int64, limit: Int64, holding: Int64, node: NodeID, incarnation: String
    ) async throws -> Int64

    /// Writes `node`'s row: it holds `reserved` slots of `kind` under its run `incarnation`.
    func setReservation(_ kind: ClusterSlotKind, tenant: TenantID, reserved: Int64, node: NodeID, incarnation: String) async throws
}

/// One node's counts of a tenant for one second.
struct ClusterTenantCounts: Sendable, Equatable {
    var admitted: Int64
    var demanded: Int64
    var connections: Int64
}

/// What a node learns from the others each second.
struct ClusterQuotaExchange: Sendable, Equatable {
    var reports: [TenantID: [ClusterRateShare.Report]] = [:]
    /// Each tenant's connections open on the other live nodes (at their latest report).
    var otherConnections: [TenantID: Int64] = [:]
    /// The live members.
    var members: Set<NodeID> = []
}

/// What a reservation counts.
enum ClusterSlotKind: String, Sendable, CaseIterable {
    case connections
    case subscriptions
}
