import Tenancy
import TopGunCore
import TopGunWire

/// `PARTITION_MAP_REQUEST` (protocol.md §5): the map a tenant's client routes by, built from
/// the current partition table, sent when the client's version is older.
public struct PartitionMapHandler: Sendable {
    let partitionTable: CurrentPartitionTable
    let endpoints: AdvertisedEndpoints
    let clock: NodeClock

    public init(partitionTable: CurrentPartitionTable, endpoints: AdvertisedEndpoints, clock: NodeClock) {
        self.partitionTable = partitionTable
        self.endpoints = endpoints
        self.clock = clock
    }

    func request(_ request: PartitionMapRequest, context: RequestContext, out: SessionOutbound) {
        out.followPartitionMap()
        let map = partitionMap(for: context.tenant)
        if (request.currentVersion ?? -1) < map.version { out.send(.partitionMap(map)) }
    }

    /// Sends the current map to every client that follows it (after the table changed).
    func announce(to sessions: SessionRegistry) {
        var maps: [TenantID: PartitionMap] = [:]
        for (outbound, context) in sessions.partitionMapFollowers() {
            if maps[context.tenant] == nil { maps[context.tenant] = partitionMap(for: context.tenant) }
            outbound.send(.partitionMap(maps[context.tenant]!))
        }
    }

    /// The map of `tenant` from the current table.
    func partitionMap(for tenant: TenantID) -> PartitionMap {
        Self.partitionMap(
            table: partitionTable.table, tenant: tenant, localNode: partitionTable.localNode,
            localEndpoints: NodeEndpoints(websocket: endpoints.websocket, http: endpoints.http), generatedAt: clock.nowMillis())
    }

    /// `PARTITION_MAP` for `tenant` from `table`: entry `p` names the owner and backups of
    /// server partition `(p + offset(tenant)) % 271` (design.md §3 step 4), so an unmodified
    /// client computing `fnv1a(key) % 271` reaches the owner. Its version is the table's; the
    /// local node's endpoints are the bound ones when the table does not know them yet.
    static func partitionMap(
        table: PartitionTable, tenant: TenantID, localNode: NodeID, localEndpoints: NodeEndpoints, generatedAt: Int64
    ) -> PartitionMap {
        let nodes = table.members.map { member in
            let known = NodeEndpoints(websocket: member.websocketURL, http: member.httpURL)
            let endpoints = member.id == localNode && member.websocketURL.isEmpty ? localEndpoints : known
            return PartitionMapNode(nodeId: member.id.rawValue, endpoints: endpoints, status: .active)
        }
        let partitions = (0..<PartitionFunction.partitionCount).map { clientPartition in
            let serverPartition = PartitionFunction.serverPartition(forClientPartition: clientPartition, tenantID: tenant.rawValue)
            let assignment = table.assignment(of: serverPartition)
            return PartitionMapEntry(
                partitionId: Int64(clientPartition), ownerNodeId: assignment.owner.rawValue, backupNodeIds: assignment.backups.map(\.rawValue))
        }
        return PartitionMap(
            version: table.version, partitionCount: Int64(PartitionFunction.partitionCount), nodes: nodes, partitions: partitions,
            generatedAt: generatedAt)
    }
}
