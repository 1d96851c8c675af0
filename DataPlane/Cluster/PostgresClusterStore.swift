import Crypto
import Foundation
import Logging
import Metadata
import NIOCore
import PostgresNIO
import Synchronization
import TopGunCore

/// The cluster's membership and partition table in PostgreSQL (Migrations 0006): leases whose
/// expiry is the database's clock, the coordinator as the holder of an advisory lock on a
/// connection of its own, and a new table announced with `NOTIFY topgun_cluster`.
public final class PostgresClusterStore: ClusterStore {
    /// `pg_try_advisory_lock` key of the coordinator ("topgun" in ASCII, then 1).
    static let coordinatorLockKey: Int64 = 0x746F_7067_756E_01
    static let channel = "topgun_cluster"

    private let endpoint: PostgresEndpoint
    let client: PostgresClient
    private let runTask: Task<Void, Never>
    let logger: Logger
    private let connectTimeout: Duration

    public init(endpoint: PostgresEndpoint, connectTimeout: Duration = .seconds(5), logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
        self.connectTimeout = connectTimeout
        let client = PostgresClient(
            configuration: endpoint.clientConfiguration(connectTimeout: connectTimeout, maximumConnections: 3), backgroundLogger: logger)
        self.client = client
        self.runTask = Task { await client.run() }
    }

    public func shutdown() async {
        runTask.cancel()
        await runTask.value
    }

    public func credentials() async throws -> ClusterCredentials {
        let proposedSecret = [UInt8](SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let proposedId = "cluster-" + UUID().uuidString.lowercased().prefix(8)
        _ = try await client.query("""
            INSERT INTO cluster_identity (cluster_id, secret) VALUES (\(String(proposedId)), \(ByteBuffer(bytes: proposedSecret)))
            ON CONFLICT (singleton) DO NOTHING
            """, logger: logger)
        let rows = try await client.query("SELECT cluster_id, secret FROM cluster_identity", logger: logger)
        for try await (id, secret) in rows.decode((String, ByteBuffer).self) {
            return ClusterCredentials(clusterId: id, secret: Array(secret.readableBytesView))
        }
        throw ClusterMembershipError.tableChanged(expected: nil, found: nil)
    }

    public func acquire(_ lease: ClusterLease, duration: Duration) async throws {
        let rows = try await client.query("""
            INSERT INTO cluster_members (node_id, incarnation, cluster_endpoint, websocket_url, http_url, protocol_version, status,
                                         started_at, heartbeat_at, lease_expires_at)
            VALUES (\(lease.node.rawValue), \(lease.incarnation), \(lease.clusterEndpoint), \(lease.websocketURL), \(lease.httpURL),
                    \(Int32(lease.protocolVersion)), \(lease.status.rawValue), now(), now(), now() + \(Self.milliseconds(duration)) * interval '1 millisecond')
            ON CONFLICT (node_id) DO UPDATE SET
                incarnation = EXCLUDED.incarnation, cluster_endpoint = EXCLUDED.cluster_endpoint,
                websocket_url = EXCLUDED.websocket_url, http_url = EXCLUDED.http_url,
                protocol_version = EXCLUDED.protocol_version, status = EXCLUDED.status, started_at = now(),
                heartbeat_at = now(), lease_expires_at = EXCLUDED.lease_expires_at
            WHERE cluster_members.lease_expires_at <= now() OR cluster_members.incarnation = EXCLUDED.incarnation
            RETURNING node_id
            """, logger: logger)
        for try await _ in rows { return }
        throw ClusterMembershipError.nodeIdInUse(lease.node)
    }

    public func renew(_ lease: ClusterLease, duration: Duration) async throws -> Bool {
        let rows = try await client.query("""
            UPDATE cluster_members SET heartbeat_at = now(), lease_expires_at = now() + \(Self.milliseconds(duration)) * interval '1 millisecond',
                cluster_endpoint = \(lease.clusterEndpoint), websocket_url = \(lease.websocketURL), http_url = \(lease.httpURL),
                status = \(lease.status.rawValue)
            WHERE node_id = \(lease.node.rawValue) AND incarnation = \(lease.incarnation) AND lease_expires_at > now()
            RETURNING node_id
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    public func release(_ lease: ClusterLease) async throws {
        _ = try await client.query(
            "DELETE FROM cluster_members WHERE node_id = \(lease.node.rawValue) AND incarnation = \(lease.incarnation)", logger: logger)
    }

    public func leases() async throws -> [MemberLease] {
        let rows = try await client.query("""
            SELECT node_id, incarnation, cluster_endpoint, websocket_url, http_url, protocol_version, status, started_at,
                   lease_expires_at > now()
            FROM cluster_members ORDER BY node_id
            """, logger: logger)
        var leases: [MemberLease] = []
        for try await (node, incarnation, cluster, websocket, http, version, status, started, live) in rows.decode(
            (String, String, String, String, String, Int32, String, Date, Bool).self)
        {
            let lease = ClusterLease(
                node: NodeID(node), incarnation: incarnation, clusterEndpoint: cluster, websocketURL: websocket, httpURL: http,
                protocolVersion: Int(version), status: ClusterLease.Status(rawValue: status) ?? .active)
            leases.append(MemberLease(lease: lease, isLive: live, startedAt: started))
        }
        return leases
    }

    public func reportSynced(partition: Int, node: NodeID, incarnation: String?, epoch: Int64) async throws {
        // Only while the table still names the node a replica of the partition under that
        // epoch and the run that got the copy holds the node's lease, and never lowering a
        // newer report: a late report (from before a failover, or about a run that since
        // restarted) must not pass for a copy nobody holds.
        _ = try await client.query("""
            INSERT INTO cluster_replicas (partition_id, node_id, epoch)
            SELECT partition_id, \(node.rawValue), epoch FROM cluster_partitions
            WHERE partition_id = \(Int32(partition)) AND epoch = \(epoch)
              AND (\(node.rawValue) = ANY(backup_nodes) OR migration_target = \(node.rawValue))
              AND (\(incarnation ?? "") = '' OR EXISTS (
                  SELECT 1 FROM cluster_members WHERE node_id = \(node.rawValue) AND incarnation = \(incarnation ?? "")))
            ON CONFLICT (partition_id, node_id) DO UPDATE SET epoch = EXCLUDED.epoch, synced_at = now()
            WHERE cluster_replicas.epoch <= EXCLUDED.epoch
            """, logger: logger)
    }

    public func syncedReplicas() async throws -> [Int: [NodeID: Int64]] {
        var synced: [Int: [NodeID: Int64]] = [:]
        let rows = try await client.query("SELECT partition_id, node_id, epoch FROM cluster_replicas", logger: logger)
        for try await (partition, node, epoch) in rows.decode((Int32, String, Int64).self) {
            synced[Int(partition), default: [:]][NodeID(node)] = epoch
        }
        return synced
    }

    public func table() async throws -> PartitionTable? {
        try await client.withTransaction(logger: logger) { connection in
            // One snapshot for the header and the rows.
            _ = try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
            return try await Self.readTable(connection, logger: self.logger)
        }
    }

    static func readTable(_ connection: PostgresConnection, logger: Logger) async throws -> PartitionTable? {
        var header: (version: Int64, members: [String], incarnations: [String])?
        let headerRows = try await connection.query("SELECT version, members, member_incarnations FROM cluster_partition_table", logger: logger)
        for try await (version, members, incarnations) in headerRows.decode((Int64, [String], [String]).self) {
            header = (version, members, incarnations)
        }
        guard let header else { return nil }
        var endpoints: [String: (String, String)] = [:]
        let memberRows = try await connection.query("SELECT node_id, websocket_url, http_url FROM cluster_members", logger: logger)
        for try await (node, websocket, http) in memberRows.decode((String, String, String).self) { endpoints[node] = (websocket, http) }
        var assignments = [PartitionTable.Assignment?](repeating: nil, count: PartitionFunction.partitionCount)
        let partitionRows = try await connection.query(
            "SELECT partition_id, owner_node, backup_nodes, epoch, migration_target FROM cluster_partitions", logger: logger)
        for try await (partition, owner, backups, epoch, target) in partitionRows.decode((Int32, String, [String], Int64, String?).self) {
            guard assignments.indices.contains(Int(partition)) else { continue }
            assignments[Int(partition)] = PartitionTable.Assignment(
                owner: NodeID(owner), backups: backups.map(NodeID.init), epoch: epoch, migrationTarget: target.map(NodeID.init))
        }
        // Tables written before the runs were recorded have none.
        let incarnations = header.incarnations.count == header.members.count ? header.incarnations : []
        let members = header.members.enumerated().map { index, node in
            PartitionTable.Member(
                id: NodeID(node), websocketURL: endpoints[node]?.0 ?? "", httpURL: endpoints[node]?.1 ?? "",
                incarnation: incarnations.isEmpty || incarnations[index].isEmpty ? nil : incarnations[index])
        }
        let complete = assignments.compactMap { $0 }
        guard complete.count == PartitionFunction.partitionCount,
            let table = PartitionTable(version: header.version, members: members, assignments: complete)
        else {
            throw ClusterStoreError.inconsistentTable(version: header.version)
        }
        return table
    }

    public func coordinate(as node: NodeID, _ body: @Sendable (any CoordinatorSession) async throws -> Void) async throws -> Bool {
        let configuration = try endpoint.connectionConfiguration(connectTimeout: connectTimeout, applicationName: "topgun-coordinator-\(node)")
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            var locked = false
            let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.coordinatorLockKey))", logger: logger)
            for try await value in rows.decode(Bool.self) { locked = value }
            guard locked else {
                try? await Self.evictStaleCoordinator(using: connection, logger: logger)
                try? await connection.close()
                return false
            }
            try await body(PostgresCoordinatorSession(connection: connection, logger: logger))
        } catch {
            try? await connection.close()
            throw error
        }
        // Closing the connection releases the lock.
        try? await connection.close()
        return true
    }

    /// Ends the database session of a coordinator whose node's lease has expired: a node cut
    /// off from PostgreSQL by the network (not a crash, whose socket closes) keeps its session,
    /// and with it the lock, until TCP gives up, which may take many minutes; meanwhile nobody
    /// could fail its partitions over. Its connections name the node (`application_name`, which
    /// PostgreSQL cuts to 63 bytes).
    static func evictStaleCoordinator(using connection: PostgresConnection, logger: Logger) async throws {
        let classID = Int64(coordinatorLockKey >> 32)
        let objectID = Int64(coordinatorLockKey & 0xFFFF_FFFF)
        let rows = try await connection.query("""
            SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = \(classID) AND l.objid::int8 = \(objectID)
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND a.datname = current_database()
              AND a.application_name LIKE 'topgun-coordinator-%'
              AND NOT EXISTS (SELECT 1 FROM cluster_members m
                              WHERE left('topgun-coordinator-' || m.node_id, 63) = a.application_name AND m.lease_expires_at > now())
            """, logger: logger)
        var stale: [(Int32, String)] = []
        for try await (pid, name) in rows.decode((Int32, String).self) { stale.append((pid, name)) }
        for (pid, name) in stale {
            logger.warning("ending the session of a coordinator whose lease expired", metadata: ["session": "\(name)", "pid": "\(pid)"])
            _ = try await connection.query("SELECT pg_terminate_backend(\(pid))", logger: logger).collect()
        }
    }

    public func tableChanges() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let endpoint = self.endpoint
        let logger = self.logger
        let connectTimeout = self.connectTimeout
        let task = Task {
            var failures = 0
            while !Task.isCancelled {
                do {
                    let configuration = try endpoint.connectionConfiguration(connectTimeout: connectTimeout, applicationName: "topgun-cluster-listener")
                    let connection = try await PostgresConnection.connect(configuration: configuration, id: 2, logger: logger)
                    defer { Task { try? await connection.close() } }
                    try await connection.listen(on: Self.channel) { notifications in
                        failures = 0
                        // Listening now: whatever was published before is read by the poll.
                        continuation.yield()
                        for try await _ in notifications { continuation.yield() }
                    }
                } catch {
                    if Task.isCancelled { break }
                    if failures == 0 {
                        logger.warning("cluster change stream lost; polling until it is back", metadata: ["error": "\(error)"])
                    }
                }
                failures += 1
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 3_000)))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

enum ClusterStoreError: Error, CustomStringConvertible {
    case inconsistentTable(version: Int64)

    var description: String {
        switch self {
        case .inconsistentTable(let version):
            "the published partition table (version \(version)) is incomplete or names a node that is not among its members"
        }
    }
}

/// The coordinator's lock connection: what it publishes runs on the connection that holds the
/// lock, so a coordinator that lost the lock (its connection) cannot publish.
struct PostgresCoordinatorSession: CoordinatorSession {
    let connection: PostgresConnection
    let logger: Logger

    func publish(_ table: PartitionTable, replacing expected: Int64?, backupCount: Int, coordinator: NodeID) async throws {
        try await withStorageTimeout(.seconds(10)) { try await self.publishNow(table, replacing: expected, backupCount: backupCount, coordinator: coordinator) }
    }

    private func publishNow(_ table: PartitionTable, replacing expected: Int64?, backupCount: Int, coordinator: NodeID) async throws {
        let logger = self.logger
        var partitions: [Int32] = []
        var owners: [String] = []
        var backups: [String] = []
        var epochs: [Int64] = []
        var targets: [String] = []
        for (partition, assignment) in table.assignments.enumerated() {
            targets.append(assignment.migrationTarget?.rawValue ?? "")
            partitions.append(Int32(partition))
            owners.append(assignment.owner.rawValue)
            // Node ids hold no comma (`NodeID.isValid`).
            backups.append(assignment.backups.map(\.rawValue).joined(separator: ","))
            epochs.append(assignment.epoch)
        }
        let members = table.members.map(\.id.rawValue)
        let incarnations = table.members.map { $0.incarnation ?? "" }
        _ = try await connection.query("BEGIN", logger: logger)
        do {
            var found: Int64?
            var previousRuns: [String: String] = [:]
            let rows = try await connection.query(
                "SELECT version, members, member_incarnations FROM cluster_partition_table FOR UPDATE", logger: logger)
            for try await (version, previousMembers, runs) in rows.decode((Int64, [String], [String]).self) {
                found = version
                if runs.count == previousMembers.count { previousRuns = Dictionary(zip(previousMembers, runs), uniquingKeysWith: { a, _ in a }) }
            }
            guard found == expected else { throw ClusterMembershipError.tableChanged(expected: expected, found: found) }
            // Members whose run changed since the previous table: copies reported complete for
            // them were their previous runs'.
            let restarted = table.members.compactMap { member -> String? in
                guard let run = member.incarnation, let previous = previousRuns[member.id.rawValue], !previous.isEmpty, previous != run
                else { return nil }
                return member.id.rawValue
            }
            _ = try await connection.query("""
                INSERT INTO cluster_partition_table (version, members, member_incarnations, backup_count, coordinator, published_at)
                VALUES (\(table.version), \(members), \(incarnations), \(Int32(backupCount)), \(coordinator.rawValue), now())
                ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, members = EXCLUDED.members,
                    member_incarnations = EXCLUDED.member_incarnations,
                    backup_count = EXCLUDED.backup_count, coordinator = EXCLUDED.coordinator, published_at = now()
                """, logger: logger)
            // Only changed rows are written (and locked): flushes of the others go on.
            _ = try await connection.query("""
                INSERT INTO cluster_partitions (partition_id, owner_node, backup_nodes, epoch, migration_target)
                SELECT p, o, CASE WHEN b = '' THEN '{}'::text[] ELSE string_to_array(b, ',') END, e, NULLIF(m, '')
                FROM unnest(\(partitions)::int4[], \(owners)::text[], \(backups)::text[], \(epochs)::int8[], \(targets)::text[])
                    AS t(p, o, b, e, m)
                ON CONFLICT (partition_id) DO UPDATE SET owner_node = EXCLUDED.owner_node, backup_nodes = EXCLUDED.backup_nodes,
                    epoch = EXCLUDED.epoch, migration_target = EXCLUDED.migration_target
                WHERE (cluster_partitions.owner_node, cluster_partitions.backup_nodes, cluster_partitions.epoch,
                       cluster_partitions.migration_target)
                    IS DISTINCT FROM (EXCLUDED.owner_node, EXCLUDED.backup_nodes, EXCLUDED.epoch, EXCLUDED.migration_target)
                """, logger: logger)
            // A complete copy counts only while its node is named in the partition's row, and
            // only for the run that got it.
            _ = try await connection.query("""
                DELETE FROM cluster_replicas r USING cluster_partitions p
                WHERE r.partition_id = p.partition_id
                  AND ((r.node_id <> p.owner_node AND NOT (r.node_id = ANY(p.backup_nodes)) AND r.node_id IS DISTINCT FROM p.migration_target)
                       OR r.node_id = ANY(\(restarted)::text[]))
                """, logger: logger)
            _ = try await connection.query("SELECT pg_notify(\(PostgresClusterStore.channel), \(String(table.version)))", logger: logger)
            _ = try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Bounded: a connection whose session the server ended (another node evicted a
    /// coordinator whose lease expired) may never answer.
    func stillHolds() async -> Bool {
        do {
            try await withStorageTimeout(.seconds(2)) {
                _ = try await connection.query("SELECT 1", logger: logger).collect()
            }
            return true
        } catch {
            return false
        }
    }
}
