/// Settings of one data-plane node.
public struct DataPlaneConfiguration: Sendable {
    /// This node's id (HLC node id and partition owner); must not contain `:`.
    public var nodeId: String
    public var host: String
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
    /// Messages queued for one slow client before it is disconnected.
    public var outboundQueueCapacity: Int
    /// Event journal capacity per tenant.
    public var journalCapacity: Int
    /// How often each tenant's stored bytes are measured (storage quota, usage).
    public var storageMeterInterval: Duration

    public init(
        nodeId: String, host: String = "127.0.0.1", port: Int = 8080, maxFrameBytes: Int = 2 * 1024 * 1024,
        authDeadline: Duration = .seconds(10), persistTimeout: Duration = .seconds(10),
        connectionOpsPerSecond: Double = 20_000, connectionOpsBurst: Double = 40_000,
        outboundQueueCapacity: Int = 8192, journalCapacity: Int = 10_000, storageMeterInterval: Duration = .seconds(60)
    ) {
        self.storageMeterInterval = storageMeterInterval
        self.nodeId = nodeId
        self.host = host
        self.port = port
        self.maxFrameBytes = maxFrameBytes
        self.authDeadline = authDeadline
        self.persistTimeout = persistTimeout
        self.connectionOpsPerSecond = connectionOpsPerSecond
        self.connectionOpsBurst = connectionOpsBurst
        self.outboundQueueCapacity = outboundQueueCapacity
        self.journalCapacity = journalCapacity
    }
}
