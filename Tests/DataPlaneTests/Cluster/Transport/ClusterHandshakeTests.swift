import Testing

@testable import DataPlane

/// The handshake state machine, without sockets: two machines talk through queues.
@Suite struct ClusterHandshakeTests {
    static let secret = [UInt8](repeating: 0x5a, count: 32)
    static let otherSecret = [UInt8](repeating: 0xa5, count: 32)
    static let dialerNonce = [UInt8](repeating: 1, count: 32)
    static let acceptorNonce = [UInt8](repeating: 2, count: 32)

    static func identity(_ node: String, cluster: String = "alpha", secret: [UInt8] = secret) throws -> ClusterIdentity {
        try ClusterIdentity(nodeId: NodeID(node), clusterId: cluster, secret: secret)
    }

    static func dialer(
        _ node: String = "n1", expecting: String = "n2", cluster: String = "alpha", secret: [UInt8] = secret,
        version: Int = ClusterIdentity.protocolVersion, nonce: [UInt8] = dialerNonce
    ) throws -> ClusterHandshake {
        ClusterHandshake(
            role: .dialer(expecting: NodeID(expecting)), identity: try identity(node, cluster: cluster, secret: secret),
            protocolVersion: version, nonce: nonce)
    }

    static func acceptor(
        _ node: String = "n2", cluster: String = "alpha", secret: [UInt8] = secret,
        version: Int = ClusterIdentity.protocolVersion, nonce: [UInt8] = acceptorNonce
    ) throws -> ClusterHandshake {
        ClusterHandshake(
            role: .acceptor, identity: try identity(node, cluster: cluster, secret: secret),
            protocolVersion: version, nonce: nonce)
    }

    /// Runs both machines against each other, each frame delivered in order, and returns the
    /// last decisive action of each side (authenticated or refuse).
    static func converse(_ dialer: inout ClusterHandshake, _ acceptor: inout ClusterHandshake) -> (dialer: ClusterHandshake.Action, acceptor: ClusterHandshake.Action) {
        var toAcceptor: [ClusterEnvelope] = []
        var toDialer: [ClusterEnvelope] = []
        var dialerEnd = ClusterHandshake.Action.none
        var acceptorEnd = ClusterHandshake.Action.none
        func apply(_ action: ClusterHandshake.Action, outbox: inout [ClusterEnvelope], end: inout ClusterHandshake.Action) {
            switch action {
            case .send(let envelope): outbox.append(envelope)
            case .authenticated: end = action
            case .refuse(_, let notify):
                end = action
                if let notify { outbox.append(notify) }
            case .none: break
            }
        }
        apply(dialer.start(), outbox: &toAcceptor, end: &dialerEnd)
        apply(acceptor.start(), outbox: &toDialer, end: &acceptorEnd)
        while !toAcceptor.isEmpty || !toDialer.isEmpty {
            if !toAcceptor.isEmpty {
                apply(acceptor.received(toAcceptor.removeFirst()), outbox: &toDialer, end: &acceptorEnd)
            }
            if !toDialer.isEmpty {
                apply(dialer.received(toDialer.removeFirst()), outbox: &toAcceptor, end: &dialerEnd)
            }
        }
        return (dialerEnd, acceptorEnd)
    }

    static func refusal(_ action: ClusterHandshake.Action) -> HandshakeRefusal? {
        if case .refuse(let refusal, _) = action { return refusal }
        return nil
    }

    /// The PROOF a side sends after the peer's HELLO.
    static func proof(of handshake: inout ClusterHandshake, after hello: ClusterHello) -> [UInt8]? {
        if case .send(.proof(let proof)) = handshake.received(.hello(hello)) { return proof }
        return nil
    }

    // MARK: Success

    @Test func bothSidesAuthenticateEachOther() throws {
        var dialer = try Self.dialer()
        var acceptor = try Self.acceptor()
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(dialerEnd == .authenticated(peer: NodeID("n2")))
        #expect(acceptorEnd == .authenticated(peer: NodeID("n1")))
        #expect(dialer.peer == NodeID("n2"))
        #expect(acceptor.peer == NodeID("n1"))
    }

    @Test func startSendsHelloOnce() throws {
        var dialer = try Self.dialer()
        #expect(dialer.start() == .send(.hello(ClusterHello(
            nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce))))
        #expect(dialer.start() == .none)
        #expect(dialer.state == .awaitingHello)
    }

    @Test func randomNoncesAreFreshAndFullLength() {
        let first = ClusterHandshake.randomNonce()
        let second = ClusterHandshake.randomNonce()
        #expect(first.count == ClusterHandshake.nonceBytes)
        #expect(first != second)
    }

    // MARK: Refusals

    @Test func wrongClusterIsRefusedByBothSides() throws {
        var dialer = try Self.dialer(cluster: "alpha")
        var acceptor = try Self.acceptor(cluster: "beta")
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(Self.refusal(dialerEnd) == .wrongCluster(expected: "alpha", got: "beta"))
        #expect(Self.refusal(acceptorEnd) == .wrongCluster(expected: "beta", got: "alpha"))
    }

    @Test func protocolMismatchIsRefusedByBothSides() throws {
        var dialer = try Self.dialer(version: 2)
        var acceptor = try Self.acceptor(version: 1)
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(Self.refusal(dialerEnd) == .protocolMismatch(ours: 2, theirs: 1))
        #expect(Self.refusal(acceptorEnd) == .protocolMismatch(ours: 1, theirs: 2))
    }

    @Test func wrongSecretFailsTheProofOnBothSides() throws {
        var dialer = try Self.dialer(secret: Self.secret)
        var acceptor = try Self.acceptor(secret: Self.otherSecret)
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(Self.refusal(dialerEnd) == .badProof)
        #expect(Self.refusal(acceptorEnd) == .badProof)
        #expect(dialer.peer == nil)
        #expect(acceptor.peer == nil)
    }

    @Test func dialerRefusesAnotherNodeThanItDialed() throws {
        var dialer = try Self.dialer(expecting: "n3")
        var acceptor = try Self.acceptor("n2")
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(Self.refusal(dialerEnd) == .unexpectedNode(expected: NodeID("n3"), got: NodeID("n2")))
        // The acceptor hears why, from the dialer's REFUSE.
        #expect(Self.refusal(acceptorEnd) == .refusedByPeer(HandshakeRefusal.unexpectedNode(expected: NodeID("n3"), got: NodeID("n2")).description))
    }

    @Test func connectionToSelfIsRefused() throws {
        var dialer = try Self.dialer("n1", expecting: "n1")
        var acceptor = try Self.acceptor("n1")
        let (dialerEnd, acceptorEnd) = Self.converse(&dialer, &acceptor)
        #expect(Self.refusal(dialerEnd) == .selfConnection)
        #expect(Self.refusal(acceptorEnd) == .selfConnection)
    }

    @Test func reflectedHelloIsRefusedAsSelfConnection() throws {
        var acceptor = try Self.acceptor()
        guard case .send(.hello(let ownHello)) = acceptor.start() else { Issue.record("no HELLO"); return }
        #expect(Self.refusal(acceptor.received(.hello(ownHello))) == .selfConnection)
    }

    @Test func echoedNonceIsRefusedAsSelfConnection() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        let hello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.acceptorNonce)
        #expect(Self.refusal(acceptor.received(.hello(hello))) == .selfConnection)
    }

    /// An attacker without the secret dials, lets the acceptor prove itself for the attacker's
    /// HELLO, and sends that proof back as its own: the roles differ, so it fails.
    @Test func acceptorsProofReflectedBackIsRefused() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        let attackerHello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
        let acceptorsProof = try #require(Self.proof(of: &acceptor, after: attackerHello))
        #expect(Self.refusal(acceptor.received(.proof(acceptorsProof))) == .badProof)
    }

    /// The same, against a dialer: an attacker posing as the dialed node reflects the
    /// dialer's proof.
    @Test func dialersProofReflectedBackIsRefused() throws {
        var dialer = try Self.dialer()
        _ = dialer.start()
        let attackerHello = ClusterHello(nodeId: NodeID("n2"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.acceptorNonce)
        let dialersProof = try #require(Self.proof(of: &dialer, after: attackerHello))
        #expect(Self.refusal(dialer.received(.proof(dialersProof))) == .badProof)
    }

    /// A proof recorded on one connection does not open another: the nonces differ.
    @Test func replayedProofFromAnotherConnectionIsRefused() throws {
        var firstDialer = try Self.dialer()
        var firstAcceptor = try Self.acceptor()
        _ = firstDialer.start()
        guard case .send(.hello(let firstAcceptorHello)) = firstAcceptor.start() else { Issue.record("no HELLO"); return }
        let recordedProof = try #require(Self.proof(of: &firstDialer, after: firstAcceptorHello))

        var acceptor = try Self.acceptor(nonce: [UInt8](repeating: 9, count: 32))
        _ = acceptor.start()
        let replayedHello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
        _ = acceptor.received(.hello(replayedHello))
        #expect(Self.refusal(acceptor.received(.proof(recordedProof))) == .badProof)
    }

    @Test(arguments: [0, 7, 31])
    func tamperedProofIsRefused(byte: Int) throws {
        var dialer = try Self.dialer()
        var acceptor = try Self.acceptor()
        guard case .send(.hello(let dialerHello)) = dialer.start(), case .send(.hello(let acceptorHello)) = acceptor.start() else {
            Issue.record("no HELLO"); return
        }
        var proof = try #require(Self.proof(of: &dialer, after: acceptorHello))
        _ = acceptor.received(.hello(dialerHello))
        proof[byte] ^= 0x01
        #expect(Self.refusal(acceptor.received(.proof(proof))) == .badProof)
    }

    @Test func truncatedAndEmptyProofsAreRefused() throws {
        for proof in [[UInt8](), [UInt8](repeating: 0, count: 31), [UInt8](repeating: 0, count: 64)] {
            var acceptor = try Self.acceptor()
            _ = acceptor.start()
            _ = acceptor.received(.hello(ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)))
            #expect(Self.refusal(acceptor.received(.proof(proof))) == .badProof)
        }
    }

    @Test func handshakeThatRunsOutOfTimeIsRefused() throws {
        var waitingForHello = try Self.acceptor()
        _ = waitingForHello.start()
        #expect(Self.refusal(waitingForHello.timedOut()) == .timedOut)

        var waitingForProof = try Self.acceptor()
        _ = waitingForProof.start()
        _ = waitingForProof.received(.hello(ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)))
        #expect(Self.refusal(waitingForProof.timedOut()) == .timedOut)
    }

    @Test func deadlineAfterAuthenticationChangesNothing() throws {
        var dialer = try Self.dialer()
        var acceptor = try Self.acceptor()
        _ = Self.converse(&dialer, &acceptor)
        #expect(dialer.timedOut() == .none)
        #expect(dialer.malformed("late garbage") == .none)
        #expect(dialer.peer == NodeID("n2"))
    }

    @Test func peersRefusalIsReportedAsTheirs() throws {
        var dialer = try Self.dialer()
        _ = dialer.start()
        #expect(dialer.received(.refuse(reason: "bad proof of the cluster secret")) == .refuse(.refusedByPeer("bad proof of the cluster secret"), notify: nil))
    }

    @Test func peersRefusalReasonIsCut() throws {
        var dialer = try Self.dialer()
        _ = dialer.start()
        let refusal = Self.refusal(dialer.received(.refuse(reason: String(repeating: "x", count: 10_000))))
        #expect(refusal == .refusedByPeer(String(repeating: "x", count: 200)))
    }

    @Test func ownRefusalTellsThePeerWhy() throws {
        var acceptor = try Self.acceptor(cluster: "alpha")
        _ = acceptor.start()
        let action = acceptor.received(.hello(ClusterHello(nodeId: NodeID("n1"), clusterId: "beta", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)))
        let refusal = HandshakeRefusal.wrongCluster(expected: "alpha", got: "beta")
        #expect(action == .refuse(refusal, notify: .refuse(reason: refusal.description)))
    }

    @Test func refusedHandshakeIgnoresEverythingAfter() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        _ = acceptor.timedOut()
        let hello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
        #expect(acceptor.received(.hello(hello)) == .none)
        #expect(acceptor.received(.request(id: 1, type: "t", body: [])) == .none)
        #expect(acceptor.timedOut() == .none)
        #expect(acceptor.state == .refused(.timedOut))
    }

    // MARK: Malformed

    @Test func proofBeforeHelloIsMalformed() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        #expect(Self.refusal(acceptor.received(.proof([UInt8](repeating: 0, count: 32)))) == .malformed("expected HELLO, got PROOF"))
    }

    @Test func requestBeforeAuthenticationIsMalformed() throws {
        var beforeHello = try Self.acceptor()
        _ = beforeHello.start()
        #expect(Self.refusal(beforeHello.received(.request(id: 1, type: "write", body: [1]))) == .malformed("expected HELLO, got REQUEST"))

        var beforeProof = try Self.acceptor()
        _ = beforeProof.start()
        _ = beforeProof.received(.hello(ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)))
        #expect(Self.refusal(beforeProof.received(.oneway(type: "write", body: [1]))) == .malformed("expected PROOF, got ONEWAY"))
    }

    @Test func secondHelloIsMalformed() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        let hello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
        _ = acceptor.received(.hello(hello))
        #expect(Self.refusal(acceptor.received(.hello(hello))) == .malformed("expected PROOF, got HELLO"))
    }

    @Test func messageBeforeStartIsMalformed() throws {
        var acceptor = try Self.acceptor()
        let hello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
        #expect(Self.refusal(acceptor.received(.hello(hello))) == .malformed("HELLO before the handshake started"))
    }

    @Test(arguments: [0, 16, 31, 33, 64])
    func nonceOfTheWrongLengthIsMalformed(length: Int) throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        let hello = ClusterHello(nodeId: NodeID("n1"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: [UInt8](repeating: 3, count: length))
        #expect(Self.refusal(acceptor.received(.hello(hello))) == .malformed("nonce of \(length) bytes, expected 32"))
    }

    @Test func emptyOrHugeNodeIdIsMalformed() throws {
        for node in ["", String(repeating: "n", count: 257)] {
            var acceptor = try Self.acceptor()
            _ = acceptor.start()
            let hello = ClusterHello(nodeId: NodeID(node), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion, nonce: Self.dialerNonce)
            #expect(Self.refusal(acceptor.received(.hello(hello))) == .malformed("node id of \(node.utf8.count) bytes"))
        }
    }

    @Test func undecodableFrameDuringTheHandshakeIsMalformed() throws {
        var acceptor = try Self.acceptor()
        _ = acceptor.start()
        #expect(Self.refusal(acceptor.malformed("frame is not a map")) == .malformed("frame is not a map"))
    }

    // MARK: Proof

    @Test func proofDependsOnEveryInput() {
        let base = ClusterHandshake.proof(
            secret: Self.secret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce,
            ownNode: NodeID("n1"), peerNode: NodeID("n2"), clusterId: "alpha")
        let variants = [
            ClusterHandshake.proof(secret: Self.otherSecret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce, ownNode: NodeID("n1"), peerNode: NodeID("n2"), clusterId: "alpha"),
            ClusterHandshake.proof(secret: Self.secret, role: "acceptor", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce, ownNode: NodeID("n1"), peerNode: NodeID("n2"), clusterId: "alpha"),
            ClusterHandshake.proof(secret: Self.secret, role: "dialer", ownNonce: Self.acceptorNonce, peerNonce: Self.dialerNonce, ownNode: NodeID("n1"), peerNode: NodeID("n2"), clusterId: "alpha"),
            ClusterHandshake.proof(secret: Self.secret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce, ownNode: NodeID("n2"), peerNode: NodeID("n1"), clusterId: "alpha"),
            ClusterHandshake.proof(secret: Self.secret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce, ownNode: NodeID("n1"), peerNode: NodeID("n2"), clusterId: "beta"),
        ]
        #expect(base.count == 32)
        for variant in variants { #expect(variant != base) }
    }

    /// Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    @Test func proofPartsCannotBeShiftedAcrossBoundaries() {
        let first = ClusterHandshake.proof(
            secret: Self.secret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce,
            ownNode: NodeID("ab"), peerNode: NodeID("c"), clusterId: "alpha")
        let second = ClusterHandshake.proof(
            secret: Self.secret, role: "dialer", ownNonce: Self.dialerNonce, peerNonce: Self.acceptorNonce,
            ownNode: NodeID("a"), peerNode: NodeID("bc"), clusterId: "alpha")
        #expect(first != second)
    }

    @Test func constantTimeComparisonComparesWholeArrays() {
        #expect(ClusterHandshake.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!ClusterHandshake.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!ClusterHandshake.constantTimeEquals([9, 2, 3], [1, 2, 3]))
        #expect(!ClusterHandshake.constantTimeEquals([1, 2], [1, 2, 3]))
        #expect(ClusterHandshake.constantTimeEquals([], []))
    }

    // MARK: Identity

    @Test func shortSecretIsRejected() {
        #expect(throws: ClusterIdentityError.secretTooShort(bytes: 31, minimum: 32)) {
            try ClusterIdentity(nodeId: NodeID("n1"), clusterId: "alpha", secret: [UInt8](repeating: 1, count: 31))
        }
        #expect(throws: ClusterIdentityError.emptyNodeId) {
            try ClusterIdentity(nodeId: NodeID(""), clusterId: "alpha", secret: Self.secret)
        }
    }

    @Test func identityNeverPrintsItsSecret() throws {
        let identity = try Self.identity("n1")
        #expect(!"\(identity)".contains("90,"))  // 0x5a, as an array would print
        #expect("\(identity)".contains("<32 bytes>"))
    }
}
