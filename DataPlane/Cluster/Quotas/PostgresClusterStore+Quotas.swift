import Logging
import PostgresNIO
import Tenancy
import TopGunCore

/// The quota tables of migration 0008 (`cluster_tenant_seconds`, `cluster_quota_reservations`).
extension PostgresClusterStore: ClusterQuotaStore {
    func exchange(node: NodeID, second: Int64, counts: [TenantID: ClusterTenantCounts]) async throws -> ClusterQuotaExchange {
        let tenants = counts.keys.map(\.rawValue)
        let rows = counts.map { ($0.key.rawValue, $0.value) }
        // The upsert's rows are not visible to the same statement's read: this node's own
        // report of `second` is added from `counts` below.
        _ = try await client.query("""
            INSERT INTO cluster_tenant_seconds AS c (tenant_id, second, node_id, admitted, demanded, connections)
            SELECT t, \(second), \(node.rawValue), a, d, n
            FROM unnest(\(rows.map(\.0))::text[], \(rows.map(\.1.admitted))::int8[], \(rows.map(\.1.demanded))::int8[],
                        \(rows.map(\.1.connections))::int8[]) AS x(t, a, d, n)
            ON CONFLICT (tenant_id, second, node_id) DO UPDATE SET
                admitted = EXCLUDED.admitted, demanded = EXCLUDED.demanded, connections = EXCLUDED.connections
            """, logger: logger)
        var exchange = ClusterQuotaExchange()
        let members = try await client.query("SELECT node_id FROM cluster_members WHERE lease_expires_at > now()", logger: logger)
        for try await member in members.decode(String.self) { exchange.members.insert(NodeID(member)) }
        let read = try await client.query("""
            SELECT s.tenant_id, s.node_id, s.second, s.admitted, s.demanded, s.connections
            FROM cluster_tenant_seconds s JOIN cluster_members m ON m.node_id = s.node_id AND m.lease_expires_at > now()
            WHERE s.tenant_id = ANY(\(tenants)::text[]) AND s.second BETWEEN \(second - 10) AND \(second)
            """, logger: logger)
        var latestConnections: [TenantID: [NodeID: (second: Int64, count: Int64)]] = [:]
        for try await (tenant, nodeId, reported, admitted, demanded, connections) in read.decode((String, String, Int64, Int64, Int64, Int64).self) {
            let (tenant, reporter) = (TenantID(tenant), NodeID(nodeId))
            exchange.reports[tenant, default: []].append(.init(node: reporter, second: reported, admitted: admitted, demanded: demanded))
            // Connections of the latest seconds only: a node that stopped reporting a tenant
            // has none of its connections left.
            guard reporter != node, reported >= second - 1 else { continue }
            if let known = latestConnections[tenant]?[reporter], known.second >= reported { continue }
            latestConnections[tenant, default: [:]][reporter] = (reported, connections)
        }
        for (tenant, own) in counts {
            exchange.reports[tenant, default: []].removeAll { $0.node == node && $0.second == second }
            exchange.reports[tenant, default: []].append(.init(node: node, second: second, admitted: own.admitted, demanded: own.demanded))
        }
        for (tenant, nodes) in latestConnections { exchange.otherConnections[tenant] = nodes.values.reduce(0) { $0 + $1.count } }
        // Rows older than the window are never read; pruned every 10 s.
        if second % 10 == 0 {
            _ = try await client.query(
                "DELETE FROM cluster_tenant_seconds WHERE node_id = \(node.rawValue) AND second < \(second - 30)", logger: logger)
        }
        return exchange
    }

    /// Serialised by a transaction-scoped advisory lock on a hash of the tenant and kind. The
    /// node's own row is written whole, so it says what the node's current run holds whatever
    /// an earlier run of it left there.
    func reserve(
        _ kind: ClusterSlotKind, tenant: TenantID, wanted: Int64, limit: Int64, holding: Int64, node: NodeID, incarnation: String
    ) async throws -> Int64 {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtextextended('topgun.quota:' || \(tenant.rawValue) || ':' || \(kind.rawValue), 0))",
                logger: logger)
            // The other nodes' reservations; those of runs that are gone (no live lease of that
            // run) do not count.
            let held = try await connection.query("""
                SELECT COALESCE(SUM(r.reserved), 0)::int8 FROM cluster_quota_reservations r
                JOIN cluster_members m ON m.node_id = r.node_id AND m.incarnation = r.incarnation AND m.lease_expires_at > now()
                WHERE r.tenant_id = \(tenant.rawValue) AND r.kind = \(kind.rawValue) AND r.node_id <> \(node.rawValue)
                """, logger: logger)
            var others: Int64 = 0
            for try await sum in held.decode(Int64.self) { others = sum }
            let granted = max(0, min(wanted, limit - others - holding))
            try await Self.writeReservation(
                kind, tenant: tenant, reserved: holding + granted, node: node, incarnation: incarnation, on: connection, logger: logger)
            return granted
        }
    }

    func setReservation(_ kind: ClusterSlotKind, tenant: TenantID, reserved: Int64, node: NodeID, incarnation: String) async throws {
        try await client.withConnection { connection in
            try await Self.writeReservation(kind, tenant: tenant, reserved: reserved, node: node, incarnation: incarnation, on: connection, logger: logger)
        }
    }

    private static func writeReservation(
        _ kind: ClusterSlotKind, tenant: TenantID, reserved: Int64, node: NodeID, incarnation: String, on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        _ = try await connection.query("""
            INSERT INTO cluster_quota_reservations (tenant_id, kind, node_id, incarnation, reserved)
            VALUES (\(tenant.rawValue), \(kind.rawValue), \(node.rawValue), \(incarnation), \(reserved))
            ON CONFLICT (tenant_id, kind, node_id) DO UPDATE SET reserved = EXCLUDED.reserved, incarnation = EXCLUDED.incarnation
            """, logger: logger)
    }
}
