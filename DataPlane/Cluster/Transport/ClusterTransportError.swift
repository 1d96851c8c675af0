/// Why a request to, or a message for, another node of the cluster failed.
public enum ClusterTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Membership knows no cluster endpoint for this node.
    case unknownPeer(NodeID)
    /// The node could not be reached: the dial failed, or failed a moment ago and the
    /// transport is waiting a little before dialing again.
    case unreachable(NodeID, reason: String)
    /// No response within the request's timeout. Only this request fails; the connection
    /// stays up.
    case timedOut(NodeID, type: String)
    /// The peer's handler threw; `message` is the error's description.
    case remoteFailure(NodeID, message: String)
    /// The bytes queued for this peer stayed at their bound for longer than the wait allows:
    /// the peer (or the network) does not keep up.
    case peerOverloaded(NodeID)
    /// One side refused the other during the handshake.
    case handshakeRefused(NodeID, reason: HandshakeRefusal)
    /// The connection closed (the peer went away, `disconnect(_:)`, or this transport is
    /// shutting down) before the response came.
    case closed(NodeID)
    /// The encoded message is larger than `maxFrameBytes`; nothing was sent.
    case frameTooLarge(size: Int, limit: Int)
    /// The transport is not listening (its listener failed to bind, or it has stopped).
    case notListening(reason: String)

    public var description: String {
        switch self {
        case .unknownPeer(let node): "no cluster endpoint known for node '\(node)'"
        case .unreachable(let node, let reason): "node '\(node)' is unreachable: \(reason)"
        case .timedOut(let node, let type): "node '\(node)' did not answer '\(type)' in time"
        case .remoteFailure(let node, let message): "node '\(node)' failed the request: \(message)"
        case .peerOverloaded(let node): "node '\(node)' does not keep up: its outbound queue is full"
        case .handshakeRefused(let node, let reason): "cluster handshake with node '\(node)' refused: \(reason)"
        case .closed(let node): "connection to node '\(node)' closed"
        case .frameTooLarge(let size, let limit): "message of \(size) bytes exceeds the cluster frame limit of \(limit) bytes"
        case .notListening(let reason): "cluster transport is not listening: \(reason)"
        }
    }
}

/// Why a cluster handshake was refused. The side that refuses logs the reason and sends it to
/// the other side before it closes the connection.
public enum HandshakeRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The peer belongs to another cluster.
    case wrongCluster(expected: String, got: String)
    /// The peer speaks another version of the cluster protocol.
    case protocolMismatch(ours: Int, theirs: Int)
    /// The peer's proof does not show knowledge of the cluster secret.
    case badProof
    /// The dialer reached another node than the one it dialed (stale membership).
    case unexpectedNode(expected: NodeID, got: NodeID)
    /// The peer has this node's own id: a node dialed itself, or a HELLO was reflected.
    case selfConnection
    /// A frame that is not the handshake message expected at this point.
    case malformed(String)
    /// The handshake did not finish within `handshakeTimeout`.
    case timedOut
    /// The other side refused, for the reason it sent.
    case refusedByPeer(String)

    public var description: String {
        switch self {
        case .wrongCluster(let expected, let got): "wrong cluster: expected '\(expected)', got '\(got)'"
        case .protocolMismatch(let ours, let theirs): "protocol version mismatch: ours \(ours), theirs \(theirs)"
        case .badProof: "bad proof of the cluster secret"
        case .unexpectedNode(let expected, let got): "dialed node '\(expected)' but reached '\(got)'"
        case .selfConnection: "connection to self"
        case .malformed(let reason): "malformed handshake: \(reason)"
        case .timedOut: "handshake timed out"
        case .refusedByPeer(let reason): "refused by peer: \(reason)"
        }
    }
}
