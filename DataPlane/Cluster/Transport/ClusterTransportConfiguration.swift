/// Who this node is in the cluster, and the secret that lets it prove it belongs.
public struct ClusterIdentity: Sendable {
    /// The version of the cluster port's protocol this build speaks (see `ClusterHandshake`).
    public static let protocolVersion: Int = 2
    /// The shortest secret accepted: HMAC-SHA256 gains nothing from more, and shorter keys
    /// are guessable.
    public static let minimumSecretBytes = 32

    public let nodeId: NodeID
    public let clusterId: String
    /// Shared by every node of the cluster; never sent, only proven (HMAC).
    public let secret: [UInt8]

    public init(nodeId: NodeID, clusterId: String, secret: [UInt8]) throws(ClusterIdentityError) {
        guard secret.count >= Self.minimumSecretBytes else {
            throw .secretTooShort(bytes: secret.count, minimum: Self.minimumSecretBytes)
        }
        guard !nodeId.rawValue.isEmpty else { throw .emptyNodeId }
        self.nodeId = nodeId
        self.clusterId = clusterId
        self.secret = secret
    }
}

extension ClusterIdentity: CustomStringConvertible {
    /// Never prints the secret.
    public var description: String { "ClusterIdentity(node: \(nodeId), cluster: \(clusterId), secret: <\(secret.count) bytes>)" }
}

public enum ClusterIdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    case secretTooShort(bytes: Int, minimum: Int)
    case emptyNodeId

    public var description: String {
        switch self {
        case .secretTooShort(let bytes, let minimum): "cluster secret must be at least \(minimum) bytes (got \(bytes))"
        case .emptyNodeId: "node id must not be empty"
        }
    }
}

/// How the cluster port listens, dials and bounds its traffic.
public struct ClusterTransportConfiguration: Sendable {
    /// Interface the cluster port binds to.
    public var host: String
    /// Port of the cluster port; 0 picks a free one (see `ClusterTransport.waitUntilBound()`).
    public var port: Int
    /// Largest MessagePack payload of one frame, either way. A peer that announces a larger
    /// frame is disconnected; a larger outgoing message fails with `.frameTooLarge`.
    public var maxFrameBytes: Int
    /// Both HELLOs and both proofs must be exchanged within this time.
    public var handshakeTimeout: Duration
    /// Bound on establishing the TCP connection to a peer.
    public var connectTimeout: Duration
    /// Timeout of a request that does not name its own.
    public var requestTimeout: Duration
    /// Bound on the bytes waiting to be written to one connection (requests and one-way
    /// messages to a peer, or responses to it).
    public var maxQueuedBytesPerPeer: Int
    /// How long `request` and `send` wait for room when a peer's queue is full before they
    /// throw `.peerOverloaded`.
    public var overloadWait: Duration
    /// After a failed dial or a refused handshake, requests to that peer fail at once for this
    /// long instead of dialing again, so a dead peer is not hammered.
    public var redialBackoff: Duration
    /// Requests (and one-way messages) of one inbound connection handled at the same time;
    /// beyond that the connection is not read until one finishes.
    public var maxConcurrentRequestsPerConnection: Int
    /// The protocol version announced in HELLO. Leave it at `ClusterIdentity.protocolVersion`;
    /// tests change it to see a mismatch refused.
    public var protocolVersion: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        maxFrameBytes: Int = 16 * 1024 * 1024,
        handshakeTimeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(10),
        maxQueuedBytesPerPeer: Int = 8 * 1024 * 1024,
        overloadWait: Duration = .seconds(1),
        redialBackoff: Duration = .milliseconds(500),
        maxConcurrentRequestsPerConnection: Int = 64,
        protocolVersion: Int = ClusterIdentity.protocolVersion
    ) {
        self.host = host
        self.port = port
        self.maxFrameBytes = maxFrameBytes
        self.handshakeTimeout = handshakeTimeout
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maxQueuedBytesPerPeer = maxQueuedBytesPerPeer
        self.overloadWait = overloadWait
        self.redialBackoff = redialBackoff
        self.maxConcurrentRequestsPerConnection = maxConcurrentRequestsPerConnection
        self.protocolVersion = protocolVersion
    }
}

/// A peer's cluster endpoint, parsed from the "host:port" membership gives
/// (`[::1]:9080` for IPv6 literals).
struct ClusterEndpoint: Sendable, Equatable {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(_ text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }
}
