/// Settings of one data-plane node.
public struct DataPlaneConfiguration: Sendable {
    /// This node's id (HLC node id and partition owner); must not contain `:`.
    public var nodeId: String
    public var host: String
    /// The host name clients use to reach this node, in the URLs it advertises
    /// (`PARTITION_MAP`, `GET /cluster`, the ready line); nil: `host`.
    public var advertiseHost: String?
    /// 0 picks a free port.
    public var port: Int
    /// Largest accepted frame or HTTP body (protocol limit: 2 MiB).
    public var maxFrameBytes: Int
    /// How long a connection may stay unauthenticated.
    public var authDeadline: Duration
    /// How long a PERSISTED ack may wait for the write-behind flush before the op is
    /// answered with 503 (not acknowledged, so the client re-sends it).
    public var persistTimeout: Duration
    /// Per-connection inbound rate: sustained ops per second and burst.
    public var connectionOpsPerSecond: Double
    public var connectionOpsBurst: Double
    /// Bytes queued for one client at most (plus one frame) before it is closed with 1013;
    /// requests wait (are not read) while a quarter of it is used, and large results are
    /// produced in pages of an eighth of it as the client reads.
    public var outboundQueueBytes: Int
    /// After sending a close frame, how long the peer has to answer it before the TCP
    /// connection is closed regardless (and the session released).
    public var closeTimeout: Duration
    /// How long a response may wait for a client that does not read before it is closed
    /// with 1013.
    public var slowConsumerTimeout: Duration

    /// The most bytes of results one response or page carries (`QUERY_RESP`, each page of
    /// `QUERY_UPDATE` ENTERs that follows it, a `POST /sync` response's deltas and query
    /// results): an eighth of the outbound bound, at least 16 KiB.
    public var resultPageBytes: Int { max(16 * 1024, outboundQueueBytes / 8) }

    /// The most bytes of records one `POST /sync` response carries, deltas and query results
    /// together: half the outbound bound (2 MiB by default), at least 64 KiB. A poll brings
    /// the rest next time.
    public var syncResponseBytes: Int { max(64 * 1024, outboundQueueBytes / 2) }
    /// How long a graceful stop may take: closing sockets (each within `closeTimeout`) and
    /// draining write-behind; then the process exits, and PERSISTED writes not flushed by then
    /// were never acknowledged.
    public var shutdownTimeout: Duration
    /// How far ahead of this node's clock an op's timestamp may be; further ahead it is
    /// rejected for good (400, `details.field: "timestamp"`): accepted, it would win every
    /// later write of its key and drag the tenant's clock along.
    public var maxClockDrift: Duration
    /// How soon `/ready` reports a storage outage (and a recovery): the storage is probed
    /// about four times within it, each probe bounded by half of it.
    public var readinessDeadline: Duration
    /// Event journal capacity per tenant.
    public var journalCapacity: Int
    /// The most client connections (sockets on the client port, WebSocket or HTTP) held at
    /// once; nil: as many as the open-files limit allows (`ClientConnectionLimit`).
    public var maxConnections: Int?
    /// How often each tenant's stored bytes are measured (storage quota, usage).
    public var storageMeterInterval: Duration

    public init(
        nodeId: String, host: String = "127.0.0.1", port: Int = 8080, maxFrameBytes: Int = 2 * 1024 * 1024,
        authDeadline: Duration = .seconds(10), persistTimeout: Duration = .seconds(10),
        connectionOpsPerSecond: Double = 20_000, connectionOpsBurst: Double = 40_000,
        outboundQueueBytes: Int = 4 * 1024 * 1024, closeTimeout: Duration = .seconds(3), slowConsumerTimeout: Duration = .seconds(30),
        shutdownTimeout: Duration = .seconds(10), maxClockDrift: Duration = .seconds(300), readinessDeadline: Duration = .seconds(2),
        journalCapacity: Int = 10_000, storageMeterInterval: Duration = .seconds(60)
    ) {
        self.shutdownTimeout = shutdownTimeout
        self.maxClockDrift = maxClockDrift
        self.readinessDeadline = readinessDeadline
        self.storageMeterInterval = storageMeterInterval
        self.nodeId = nodeId
        self.host = host
        self.port = port
        self.maxFrameBytes = maxFrameBytes
        self.authDeadline = authDeadline
        self.persistTimeout = persistTimeout
        self.connectionOpsPerSecond = connectionOpsPerSecond
        self.connectionOpsBurst = connectionOpsBurst
        self.outboundQueueBytes = outboundQueueBytes
        self.closeTimeout = closeTimeout
        self.slowConsumerTimeout = slowConsumerTimeout
        self.journalCapacity = journalCapacity
    }
}
