import Crypto

/// The handshake of one cluster connection, as a pure state machine (events in, actions out,
/// no I/O): `ClusterHandshakeExchange` performs its actions on a socket.
///
/// Both sides send HELLO {node id, cluster id, protocol version, 32-byte nonce} at once. On the
/// peer's HELLO a side checks version, cluster and identity, then sends its PROOF:
///
///     HMAC-SHA256(secret, "topgun-cluster-v1" ‖ role ‖ own nonce ‖ peer nonce ‖ own node ‖ peer node ‖ cluster id)
///
/// each part prefixed by its length (4 bytes, big-endian) so that no two different tuples make
/// the same input. The role ("dialer" or "acceptor") makes the two proofs of a connection
/// differ, so a proof cannot be reflected back at its sender; the nonces make them differ per
/// connection, so a recorded proof cannot be replayed. On the peer's PROOF, compared in
/// constant time, the side is authenticated. Anything else before that (a request, a second
/// HELLO, a PROOF before HELLO) refuses the connection as malformed, so nothing an
/// unauthenticated peer sends reaches the handler.
struct ClusterHandshake: Sendable {
    enum Role: Sendable, Equatable {
        /// This side dialed `expecting`, and refuses to talk to any other node.
        case dialer(expecting: NodeID)
        case acceptor

        var label: String {
            switch self {
            case .dialer: "dialer"
            case .acceptor: "acceptor"
            }
        }

        /// The label of the other side's role.
        var peerLabel: String {
            switch self {
            case .dialer: "acceptor"
            case .acceptor: "dialer"
            }
        }
    }

    enum Action: Sendable, Equatable {
        /// Write this frame.
        case send(ClusterEnvelope)
        /// The peer is who it says and knows the secret: from now on frames are messages.
        case authenticated(peer: NodeID)
        /// Log the refusal, send `notify` if there is one (best effort), close.
        case refuse(HandshakeRefusal, notify: ClusterEnvelope?)
        case none
    }

    enum State: Sendable, Equatable {
        case initial
        case awaitingHello
        case awaitingProof(peer: NodeID, expectedProof: [UInt8])
        case authenticated(peer: NodeID)
        case refused(HandshakeRefusal)
    }

    static let nonceBytes = 32
    static let proofContext = "topgun-cluster-v1"
    /// Node ids are short names; a longer one in a HELLO is not from a node.
    static let maxNodeIdBytes = 256

    let role: Role
    let nodeId: NodeID
    let clusterId: String
    let protocolVersion: Int
    let nonce: [UInt8]
    private let secret: [UInt8]
    private(set) var state: State = .initial

    init(role: Role, identity: ClusterIdentity, protocolVersion: Int = ClusterIdentity.protocolVersion, nonce: [UInt8]) {
        self.role = role
        self.nodeId = identity.nodeId
        self.clusterId = identity.clusterId
        self.secret = identity.secret
        self.protocolVersion = protocolVersion
        self.nonce = nonce
    }

    /// A fresh nonce from the system's secure generator.
    static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    var peer: NodeID? {
        if case .authenticated(let peer) = state { return peer }
        return nil
    }

    /// The connection is open: send HELLO.
    mutating func start() -> Action {
        guard case .initial = state else { return .none }
        state = .awaitingHello
        return .send(.hello(ClusterHello(nodeId: nodeId, clusterId: clusterId, protocolVersion: protocolVersion, nonce: nonce)))
    }

    /// A frame arrived. After authentication the handshake has nothing more to say (the
    /// connection handles messages itself); after a refusal it ignores everything.
    mutating func received(_ envelope: ClusterEnvelope) -> Action {
        switch state {
        case .authenticated, .refused:
            return .none
        case .initial:
            return refuse(.malformed("\(envelope.kindName) before the handshake started"))
        case .awaitingHello:
            switch envelope {
            case .hello(let hello): return receivedHello(hello)
            case .refuse(let reason): return peerRefused(reason)
            default: return refuse(.malformed("expected HELLO, got \(envelope.kindName)"))
            }
        case .awaitingProof(let peer, let expectedProof):
            switch envelope {
            case .proof(let proof):
                guard Self.constantTimeEquals(proof, expectedProof) else { return refuse(.badProof) }
                state = .authenticated(peer: peer)
                return .authenticated(peer: peer)
            case .refuse(let reason): return peerRefused(reason)
            default: return refuse(.malformed("expected PROOF, got \(envelope.kindName)"))
            }
        }
    }

    /// A frame that could not be decoded (or a framing error) during the handshake.
    mutating func malformed(_ reason: String) -> Action {
        switch state {
        case .authenticated, .refused: return .none
        case .initial, .awaitingHello, .awaitingProof: return refuse(.malformed(reason))
        }
    }

    /// The handshake deadline passed.
    mutating func timedOut() -> Action {
        switch state {
        case .authenticated, .refused: return .none
        case .initial, .awaitingHello, .awaitingProof: return refuse(.timedOut)
        }
    }

    private mutating func receivedHello(_ hello: ClusterHello) -> Action {
        // Version first: another version may mean other fields.
        guard hello.protocolVersion == protocolVersion else {
            return refuse(.protocolMismatch(ours: protocolVersion, theirs: hello.protocolVersion))
        }
        guard hello.clusterId == clusterId else { return refuse(.wrongCluster(expected: clusterId, got: hello.clusterId)) }
        guard hello.nonce.count == Self.nonceBytes else {
            return refuse(.malformed("nonce of \(hello.nonce.count) bytes, expected \(Self.nonceBytes)"))
        }
        let peerBytes = hello.nodeId.rawValue.utf8.count
        guard peerBytes > 0, peerBytes <= Self.maxNodeIdBytes else {
            return refuse(.malformed("node id of \(peerBytes) bytes"))
        }
        guard hello.nodeId != nodeId, hello.nonce != nonce else { return refuse(.selfConnection) }
        if case .dialer(let expected) = role, hello.nodeId != expected {
            return refuse(.unexpectedNode(expected: expected, got: hello.nodeId))
        }
        let ownProof = Self.proof(
            secret: secret, role: role.label, ownNonce: nonce, peerNonce: hello.nonce,
            ownNode: nodeId, peerNode: hello.nodeId, clusterId: clusterId)
        let expectedProof = Self.proof(
            secret: secret, role: role.peerLabel, ownNonce: hello.nonce, peerNonce: nonce,
            ownNode: hello.nodeId, peerNode: nodeId, clusterId: clusterId)
        state = .awaitingProof(peer: hello.nodeId, expectedProof: expectedProof)
        return .send(.proof(ownProof))
    }

    private mutating func refuse(_ refusal: HandshakeRefusal) -> Action {
        state = .refused(refusal)
        return .refuse(refusal, notify: .refuse(reason: refusal.description))
    }

    private mutating func peerRefused(_ reason: String) -> Action {
        // The peer's words go to our log: keep them short.
        let refusal = HandshakeRefusal.refusedByPeer(String(reason.prefix(200)))
        state = .refused(refusal)
        return .refuse(refusal, notify: nil)
    }

    /// The proof a side with `role` sends (see the type's comment).
    static func proof(
        secret: [UInt8], role: String, ownNonce: [UInt8], peerNonce: [UInt8],
        ownNode: NodeID, peerNode: NodeID, clusterId: String
    ) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        func part(_ bytes: [UInt8]) {
            let length = UInt32(truncatingIfNeeded: bytes.count)
            hmac.update(data: [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)])
            hmac.update(data: bytes)
        }
        part(Array(proofContext.utf8))
        part(Array(role.utf8))
        part(ownNonce)
        part(peerNonce)
        part(Array(ownNode.rawValue.utf8))
        part(Array(peerNode.rawValue.utf8))
        part(Array(clusterId.utf8))
        return Array(hmac.finalize())
    }

    /// Equal bytes, in a time that depends only on the lengths (not on where they differ).
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
