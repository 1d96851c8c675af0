/// How a data-plane node takes part in a cluster (`topgun data-plane --cluster-port ...`).
public struct ClusterSettings: Sendable {
    /// The version of the cluster's protocol (leases, table, cluster port). A node gives
    /// partitions only to nodes of its own version, and refuses peers of another.
    public static let protocolVersion = ClusterIdentity.protocolVersion

    public var node: NodeID
    /// Interface and port of the cluster port (0 picks a free port).
    public var clusterHost: String
    public var clusterPort: Int
    /// The host name other nodes and clients use to reach this one (in its lease, its cluster
    /// endpoint, and the URLs `PARTITION_MAP` and `GET /cluster` name).
    public var advertiseHost: String
    /// How long a lease lives without a heartbeat: a node silent this long is gone, and its
    /// partitions go to others.
    public var leaseDuration: Duration
    /// How often the lease is renewed and the table looked at.
    public var heartbeatInterval: Duration
    /// Backups per partition.
    public var backupCount: Int
    /// How long a graceful stop may spend handing partitions over before it leaves anyway
    /// (its partitions then fail over as after a crash).
    public var leaveTimeout: Duration
    /// Partitions that move at once (join, leave, rebalance): each streams its records to
    /// its new owner while writes go on.
    public var maxConcurrentMigrations: Int

    public init(
        node: NodeID, clusterHost: String = "127.0.0.1", clusterPort: Int = 9080, advertiseHost: String = "127.0.0.1",
        leaseDuration: Duration = .seconds(5), heartbeatInterval: Duration = .seconds(1), backupCount: Int = 1,
        leaveTimeout: Duration = .seconds(60), maxConcurrentMigrations: Int = 16
    ) {
        self.maxConcurrentMigrations = maxConcurrentMigrations
        self.node = node
        self.clusterHost = clusterHost
        self.clusterPort = clusterPort
        self.advertiseHost = advertiseHost
        self.leaseDuration = leaseDuration
        self.heartbeatInterval = heartbeatInterval
        self.backupCount = backupCount
        self.leaveTimeout = leaveTimeout
    }
}

extension NodeID {
    /// Node ids are names in URLs, logs and SQL arrays: letters, digits, `.`, `_` and `-`,
    /// 1 to 64 of them.
    public var isValid: Bool {
        let bytes = rawValue.utf8
        return (1...64).contains(bytes.count) && bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }
}
