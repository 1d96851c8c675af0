import Metrics

/// A node's view of its cluster, for `/metrics` (design.md §6): members, what it owns and
/// backs up, moves under way, how far its backups trail it, and what it forwards.
public final class ClusterMetrics: Sendable {
    /// First, as in `DataPlaneMetrics`: handles made before the backend is bootstrapped stay no-ops.
    private let registry = MetricsBootstrap.prometheusRegistry()
    /// Members with a live lease.
    public let members = Gauge(label: "topgun_cluster_members")
    /// The version of the table this node acts on.
    public let tableVersion = Gauge(label: "topgun_cluster_table_version")
    public let partitionsOwned = Gauge(label: "topgun_cluster_partitions_owned")
    /// Partitions this node keeps a copy of as a backup (or migration target).
    public let partitionsBackedUp = Gauge(label: "topgun_cluster_partitions_backed_up")
    /// Partitions of the table moving to another node now.
    public let migrations = Gauge(label: "topgun_cluster_migrations")
    /// Replication batches this node sent that its slowest backup has not acknowledged yet.
    public let replicationLag = Gauge(label: "topgun_cluster_replication_lag_batches")
    /// Ops forwarded to their partition's owner.
    public let forwardedOps = Counter(label: "topgun_cluster_forwarded_ops_total")
    /// Rows of partitions this node lost before writing them, handed to their new owner.
    public let displacedRows = Counter(label: "topgun_cluster_displaced_rows_total")
    /// Pushes to a peer dropped because the peer did not keep up (`PeerStream`).
    public let streamOverflows = Counter(label: "topgun_cluster_stream_overflows_total")
    /// Losses seen in peers' pushes to this node: each closed the sessions relying on the peer.
    public let streamGaps = Counter(label: "topgun_cluster_stream_gaps_total")

    public init() {}
}
