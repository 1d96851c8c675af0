import Foundation
import Logging
import TopGunCore

/// What a node of a cluster sets up before anything else: the cluster's credentials and the
/// node's lease (so that a second live node with the same id stops at once).
struct ClusterJoin: Sendable {
    let credentials: ClusterCredentials
    let lease: ClusterLease
    /// This run's incarnation, read by every flush's claim (it changes when a lost lease is
    /// taken again).
    let incarnation: SynchronizedBox<String>
    /// Rows of partitions this node lost before writing them, on their way to the new owner.
    let displaced: DisplacedRows

    static func start(store: any ClusterStore, settings: ClusterSettings, logger: Logger) async throws -> ClusterJoin {
        guard settings.node.isValid else {
            throw ClusterSettingsError.invalidNodeId(settings.node.rawValue)
        }
        let credentials = try await store.credentials()
        let lease = ClusterLease(
            node: settings.node, incarnation: UUID().uuidString.lowercased(),
            clusterEndpoint: "\(settings.advertiseHost):\(settings.clusterPort)", protocolVersion: ClusterSettings.protocolVersion)
        try await ClusterMembershipService.acquire(lease, in: store, settings: settings, logger: logger)
        logger.info("joined the cluster", metadata: ["cluster": "\(credentials.clusterId)", "node": "\(settings.node)"])
        return ClusterJoin(
            credentials: credentials, lease: lease, incarnation: SynchronizedBox(lease.incarnation), displaced: DisplacedRows(logger: logger))
    }
}

enum ClusterSettingsError: Error, CustomStringConvertible {
    case invalidNodeId(String)

    var description: String {
        switch self {
        case .invalidNodeId(let id):
            "invalid node id '\(id)': use 1 to 64 letters, digits, '.', '_' or '-'"
        }
    }
}
