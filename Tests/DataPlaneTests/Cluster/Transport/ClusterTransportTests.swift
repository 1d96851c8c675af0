import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

@testable import DataPlane

/// Two or three real transports on 127.0.0.1: each test proves one promise of the cluster
/// port. Serialized, so timing on a 2-core machine stays predictable.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterTransportTests {
    let n1 = NodeID("n1")
    let n2 = NodeID("n2")
    let n3 = NodeID("n3")

    // MARK: Requests

    @Test func requestsRoundTripAtSeveralSizes() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            try await cluster.start("n2") { _, type, body in Array(type.utf8) + body }
            for size in [0, 1, 255, 70_000, 1 << 20] {
                let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                let response = try await a.request("echo:", body, to: n2)
                #expect(response == Array("echo:".utf8) + body, "size \(size)")
            }
            #expect(a.isConnected(to: n2))
        }
    }

    @Test func twoHundredConcurrentRequestsGetTheirOwnResponses() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            try await cluster.start("n2") { _, _, body in
                // Answer out of order.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                return body.reversed()
            }
            try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let body = Array("request \(index)".utf8)
                        return (index, try await a.request("reverse", body, to: self.n2))
                    }
                }
                var answered = 0
                for try await (index, response) in group {
                    #expect(response == Array("request \(index)".utf8).reversed())
                    answered += 1
                }
                #expect(answered == 200)
            }
        }
    }

    @Test func oneWayMessageReachesTheHandler() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1")
            try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            try await a.send("backup", [1, 2, 3], to: n2)
            try await a.send("backup", [4], to: n2)
            try await cluster.waitUntil("both one-way messages") { calls.count == 2 }
            #expect(Set(calls.all.map(\.body)) == [[1, 2, 3], [4]])
            #expect(calls.all.allSatisfy { $0.from == n1 && $0.type == "backup" })
        }
    }

    @Test func oneWayMessagesAreHandledInTheOrderSent() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1")
            // A handler whose duration varies: handled concurrently, the calls would finish
            // out of order.
            try await cluster.start("n2") { from, type, body in
                try await Task.sleep(for: .microseconds(Int(body[0] % 5) * 100))
                calls.record(from, type, body)
                return []
            }
            for index in 0..<100 { try await a.send("push", [UInt8(index)], to: n2) }
            try await cluster.waitUntil("every one-way message") { calls.count == 100 }
            #expect(calls.all.map { Int($0.body[0]) } == Array(0..<100))
        }
    }

    @Test func handlerErrorComesBackAsRemoteFailure() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            try await cluster.start("n2") { _, _, _ in throw ClusterTestFailure(description: "partition 17 is not here") }
            await #expect(throws: ClusterTransportError.remoteFailure(n2, message: "partition 17 is not here")) {
                try await a.request("forward", [1], to: n2)
            }
            // The connection stays up for the next request.
            await #expect(throws: ClusterTransportError.remoteFailure(n2, message: "partition 17 is not here")) {
                try await a.request("forward", [2], to: n2)
            }
        }
    }

    @Test func requestLargerThanAFrameIsRefusedBeforeSending() async throws {
        try await ClusterTestNodes.with { cluster in
            var configuration = ClusterTransportConfiguration.forTests()
            configuration.maxFrameBytes = 4096
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1", configuration: configuration)
            try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let error = await #expect(throws: ClusterTransportError.self) {
                try await a.request("big", [UInt8](repeating: 0, count: 5000), to: n2)
            }
            guard case .frameTooLarge(let size, let limit) = error else {
                Issue.record("expected frameTooLarge, got \(String(describing: error))")
                return
            }
            #expect(size > 5000)
            #expect(limit == 4096)
            #expect(try await a.request("small", [1], to: n2) == [1])
            #expect(calls.count(of: "big") == 0)
        }
    }

    // MARK: Peers that cannot be reached

    @Test func unknownPeerIsRefusedAtOnce() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            await #expect(throws: ClusterTransportError.unknownPeer(NodeID("n9"))) {
                try await a.request("x", [], to: NodeID("n9"))
            }
            await #expect(throws: ClusterTransportError.unknownPeer(NodeID("n9"))) {
                try await a.send("x", [], to: NodeID("n9"))
            }
        }
    }

    @Test func requestToSelfIsRefused() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            await #expect(throws: ClusterTransportError.handshakeRefused(n1, reason: .selfConnection)) {
                try await a.request("x", [], to: n1)
            }
        }
    }

    @Test func peerNotListeningIsUnreachableQuickly() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            cluster.directory.set("n3", port: try await ClusterTestNodes.closedPort())
            let started = ContinuousClock.now
            for _ in 0..<3 {
                let error = await #expect(throws: ClusterTransportError.self) {
                    try await a.request("x", [], to: n3)
                }
                guard case .unreachable(let node, _) = error else {
                    Issue.record("expected unreachable, got \(String(describing: error))")
                    return
                }
                #expect(node == n3)
            }
            // Connection refused is immediate, and within the backoff no dial happens at all:
            // nowhere near the 30 s request timeout.
            #expect(ContinuousClock.now - started < .seconds(10))
            await #expect(throws: ClusterTransportError.self) { try await a.send("x", [], to: n3) }
        }
    }

    // MARK: Refused handshakes

    @Test func wrongSecretIsRefusedBothWaysAndNoHandlerRuns() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls1 = ClusterCallLog()
            let calls2 = ClusterCallLog()
            let a = try await cluster.start("n1", secret: [UInt8](repeating: 1, count: 32), handler: ClusterTestHandlers.echo(recording: calls1))
            let b = try await cluster.start("n2", secret: [UInt8](repeating: 2, count: 32), handler: ClusterTestHandlers.echo(recording: calls2))
            await #expect(throws: ClusterTransportError.handshakeRefused(n2, reason: .badProof)) {
                try await a.request("write", [1], to: n2)
            }
            await #expect(throws: ClusterTransportError.handshakeRefused(n1, reason: .badProof)) {
                try await b.request("write", [1], to: n1)
            }
            await #expect(throws: ClusterTransportError.self) { try await a.send("write", [1], to: n2) }
            #expect(calls1.count == 0)
            #expect(calls2.count == 0)
            // The accepting side logged one warning naming the remote address and the reason.
            try await cluster.waitUntil("n2's warning") { !cluster.logs.warnings(from: "n2", "cluster peer refused").isEmpty }
            let warning = try #require(cluster.logs.warnings(from: "n2", "cluster peer refused").first)
            #expect(warning.metadata["reason"] == HandshakeRefusal.badProof.description)
            #expect(warning.metadata["remote"]?.contains("127.0.0.1") == true)
        }
    }

    @Test func wrongClusterIsRefused() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1", cluster: "alpha")
            try await cluster.start("n2", cluster: "beta", handler: ClusterTestHandlers.echo(recording: calls))
            await #expect(throws: ClusterTransportError.handshakeRefused(n2, reason: .wrongCluster(expected: "alpha", got: "beta"))) {
                try await a.request("write", [1], to: n2)
            }
            #expect(calls.count == 0)
        }
    }

    @Test func protocolVersionMismatchIsRefused() async throws {
        try await ClusterTestNodes.with { cluster in
            var newer = ClusterTransportConfiguration.forTests()
            newer.protocolVersion = ClusterIdentity.protocolVersion + 1
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1", configuration: newer)
            try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            await #expect(throws: ClusterTransportError.handshakeRefused(
                n2, reason: .protocolMismatch(ours: ClusterIdentity.protocolVersion + 1, theirs: ClusterIdentity.protocolVersion))
            ) {
                try await a.request("write", [1], to: n2)
            }
            #expect(calls.count == 0)
        }
    }

    @Test func dialingAnEndpointWhereAnotherNodeAnswersIsRefused() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            try await cluster.start("n2")
            // Stale membership: n3's endpoint is where n2 listens.
            cluster.directory.set("n3", endpoint: try #require(cluster.directory.resolve(n2)))
            await #expect(throws: ClusterTransportError.handshakeRefused(n3, reason: .unexpectedNode(expected: n3, got: n2))) {
                try await a.request("x", [], to: n3)
            }
            #expect(try await a.request("x", [5], to: n2) == [5])
        }
    }

    /// A peer that accepts the connection but never says HELLO: the request fails at the
    /// handshake deadline, and `disconnect` fails the next one at once.
    @Test func peerThatNeverCompletesTheHandshakeIsRefusedAtTheDeadline() async throws {
        try await ClusterTestNodes.with { cluster in
            let silent = try await SilentClusterPeer.start()
            defer { silent.close() }
            var quick = ClusterTransportConfiguration.forTests()
            quick.handshakeTimeout = .milliseconds(500)
            quick.redialBackoff = .zero
            let a = try await cluster.start("n1", configuration: quick)
            cluster.directory.set("n3", port: silent.port)
            await #expect(throws: ClusterTransportError.handshakeRefused(n3, reason: .timedOut)) {
                try await a.request("x", [], to: n3)
            }

            var patient = ClusterTransportConfiguration.forTests()
            patient.handshakeTimeout = .seconds(60)
            let b = try await cluster.start("n2", configuration: patient)
            let pending = Task { try await b.request("x", [], to: self.n3, timeout: .seconds(120)) }
            try await cluster.waitUntil("n2 to dial the silent server") { silent.accepted >= 2 }
            let started = ContinuousClock.now
            b.disconnect(n3)
            await #expect(throws: ClusterTransportError.closed(n3)) { try await pending.value }
            #expect(ContinuousClock.now - started < .seconds(10))
            // The half-open connection was cut too.
            try await cluster.waitUntil("the silent server to see the close") { silent.open == 0 }
        }
    }

    // MARK: Hostile or broken clients

    @Test func garbageFromARawClientDropsOnlyThatConnection() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1")
            let b = try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let port = try #require(b.boundPort)
            let raw = try await RawClusterClient.connect(port: port)
            let frames = try await RawClusterClient.framesUntilClosed(
                raw, sending: Array("GET / HTTP/1.1\r\nHost: n2\r\n\r\n".utf8), within: .seconds(20))
            // At most the node's HELLO came back.
            #expect(frames.count <= 2)
            #expect(try await a.request("x", [7], to: n2) == [7])
            #expect(calls.all.map(\.type) == ["x"])
            try await cluster.waitUntil("n2's warning") { !cluster.logs.warnings(from: "n2", "cluster peer refused").isEmpty }
            let warning = try #require(cluster.logs.warnings(from: "n2", "cluster peer refused").first)
            #expect(warning.metadata["reason"]?.contains("exceeds the limit") == true)
        }
    }

    @Test func silentClientIsDroppedAtTheHandshakeDeadlineWithoutDisturbingOthers() async throws {
        try await ClusterTestNodes.with { cluster in
            var quick = ClusterTransportConfiguration.forTests()
            quick.handshakeTimeout = .milliseconds(500)
            let a = try await cluster.start("n1")
            let b = try await cluster.start("n2", configuration: quick)
            let raw = try await RawClusterClient.connect(port: try #require(b.boundPort))
            async let dropped = RawClusterClient.framesUntilClosed(raw, within: .seconds(20))
            // Meanwhile a real peer is served.
            #expect(try await a.request("x", [1], to: n2) == [1])
            let frames = try await dropped
            let hello = try ClusterEnvelope.decode(try #require(frames.first), maxFrameBytes: 1 << 20)
            guard case .hello(let announced) = hello else {
                Issue.record("expected HELLO, got \(hello)")
                return
            }
            #expect(announced.nodeId == n2)
            try await cluster.waitUntil("n2's warning") { !cluster.logs.warnings(from: "n2", "cluster peer refused").isEmpty }
            #expect(cluster.logs.warnings(from: "n2", "cluster peer refused").first?.metadata["reason"] == HandshakeRefusal.timedOut.description)
        }
    }

    @Test func messagesBeforeAuthenticationNeverReachTheHandler() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let b = try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let port = try #require(b.boundPort)

            // A request straight away, no HELLO.
            let first = try await RawClusterClient.connect(port: port)
            _ = try await RawClusterClient.framesUntilClosed(
                first, sending: try RawClusterClient.frame(.request(id: 1, type: "write", body: [1])), within: .seconds(20))

            // A HELLO (right cluster, any nonce) and then requests without a PROOF.
            let second = try await RawClusterClient.connect(port: port)
            let hello = ClusterEnvelope.hello(ClusterHello(
                nodeId: NodeID("intruder"), clusterId: "alpha", protocolVersion: ClusterIdentity.protocolVersion,
                nonce: ClusterHandshake.randomNonce()))
            _ = try await RawClusterClient.framesUntilClosed(
                second,
                sending: try RawClusterClient.frame(hello) + RawClusterClient.frame(.oneway(type: "write", body: [2]))
                    + RawClusterClient.frame(.request(id: 2, type: "write", body: [3])),
                within: .seconds(20))

            #expect(calls.count == 0)
            let reasons = cluster.logs.warnings(from: "n2", "cluster peer refused").compactMap { $0.metadata["reason"] }
            #expect(reasons.contains(HandshakeRefusal.malformed("expected HELLO, got REQUEST").description))
            #expect(reasons.contains(HandshakeRefusal.malformed("expected PROOF, got ONEWAY").description))
        }
    }

    /// A peer that knows the secret but then sends a frame over the limit, or one that does not
    /// decode, loses its connection; others are served.
    @Test(arguments: [[0xff, 0xff, 0xff, 0xff], [0, 0, 0, 1, 0xc1]] as [[UInt8]])
    func badFrameAfterAuthenticationClosesThatConnection(bytes: [UInt8]) async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            let b = try await cluster.start("n2")
            let raw = try await RawClusterClient.connect(port: try #require(b.boundPort))
            let identity = try ClusterIdentity(nodeId: NodeID("n9"), clusterId: "alpha", secret: ClusterTestNodes.secret)
            try await raw.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var handshake = ClusterHandshake(role: .dialer(expecting: n2), identity: identity, nonce: ClusterHandshake.randomNonce())
                let outcome = await ClusterHandshakeExchange.run(
                    &handshake, channel: raw.channel, inbound: &iterator, outbound: outbound,
                    timeout: .seconds(20), maxFrameBytes: 1 << 20)
                #expect(outcome == .authenticated(n2))
                // Authenticated by hand: a request is served.
                try await outbound.write(ClusterEnvelope.request(id: 1, type: "x", body: [4]).frame(maxFrameBytes: 1 << 20))
                let reply = try ClusterEnvelope.decode(try #require(try await iterator.next()), maxFrameBytes: 1 << 20)
                #expect(reply == .response(id: 1, body: [4]))

                try await outbound.write(ByteBuffer(bytes: bytes))
                var closed = false
                do {
                    closed = try await iterator.next() == nil
                } catch {
                    closed = true
                }
                #expect(closed)
            }
            #expect(try await a.request("x", [8], to: n2) == [8])
            try await cluster.waitUntil("n2's warning") {
                cluster.logs.all.contains { $0.label == "n2" && $0.level == .warning && $0.message.hasPrefix("closing cluster connection") }
            }
        }
    }

    // MARK: Timeouts, drops, restarts

    @Test func unansweredRequestTimesOutWhileOthersSucceed() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            try await cluster.start("n2")
            #expect(try await a.request("x", [0], to: n2) == [0])
            let hung = Task { try await a.request("hang", [], to: self.n2, timeout: .milliseconds(500)) }
            for index in 1...20 {
                #expect(try await a.request("x", [UInt8(index)], to: n2) == [UInt8(index)])
            }
            await #expect(throws: ClusterTransportError.timedOut(n2, type: "hang")) { try await hung.value }
            #expect(try await a.request("x", [99], to: n2) == [99])
            #expect(a.isConnected(to: n2))
        }
    }

    @Test func disconnectFailsPendingRequestsAtOnceAndTheNextDialsAgain() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1")
            try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let pending = Task { try await a.request("hang", [], to: n2, timeout: .seconds(120)) }
            try await cluster.waitUntil("the hanging request to arrive") { calls.count(of: "hang") == 1 }
            let started = ContinuousClock.now
            a.disconnect(n2)
            await #expect(throws: ClusterTransportError.closed(n2)) { try await pending.value }
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(try await a.request("x", [3], to: n2) == [3])
        }
    }

    @Test func restartedPeerIsReachedAgainOnTheSamePort() async throws {
        try await ClusterTestNodes.with { cluster in
            let a = try await cluster.start("n1")
            let first = try await cluster.start("n2") { _, _, _ in Array("first".utf8) }
            #expect(try await a.request("who", [], to: n2) == Array("first".utf8))
            let port = try #require(first.boundPort)

            await cluster.stop(first)
            try await cluster.waitUntil("n1 to see the connection drop") { !a.isConnected(to: n2) }

            try await cluster.start("n2", configuration: .forTests(port: port)) { _, _, _ in Array("second".utf8) }
            #expect(try await a.request("who", [], to: n2) == Array("second".utf8))
        }
    }

    @Test func peerGoingAwayFailsPendingRequestsWithClosed() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let a = try await cluster.start("n1")
            let b = try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let pending = Task { try await a.request("hang", [], to: n2, timeout: .seconds(120)) }
            try await cluster.waitUntil("the hanging request to arrive") { calls.count(of: "hang") == 1 }
            await cluster.stop(b)
            await #expect(throws: ClusterTransportError.closed(n2)) { try await pending.value }
        }
    }

    /// The acceptor's reader, waiting for a handler slot, still notices the peer leaving: its
    /// handlers are cancelled rather than left running for a peer that is gone.
    @Test func peerLeavingWhileEverySlotIsTakenCancelsItsHandlers() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            let cancelled = ClusterCallLog()
            var oneSlot = ClusterTransportConfiguration.forTests()
            oneSlot.maxConcurrentRequestsPerConnection = 1
            let a = try await cluster.start("n1")
            try await cluster.start("n2", configuration: oneSlot) { from, type, body in
                calls.record(from, type, body)
                do {
                    try await Task.sleep(for: .seconds(3600))
                } catch {
                    cancelled.record(from, type, body)
                    throw error
                }
                return body
            }
            let pending = (0..<3).map { index in
                Task { try await a.request("hang", [UInt8(index)], to: self.n2, timeout: .seconds(120)) }
            }
            try await cluster.waitUntil("the first request to take the only slot") { calls.count == 1 }
            a.disconnect(n2)
            for request in pending {
                await #expect(throws: ClusterTransportError.closed(n2)) { try await request.value }
            }
            try await cluster.waitUntil("n2 to cancel the handler of the departed peer") { cancelled.count == 1 }
            #expect(calls.count == 1)
        }
    }

    @Test func gracefulShutdownFailsPendingRequestsPromptly() async throws {
        try await ClusterTestNodes.with { cluster in
            let calls = ClusterCallLog()
            try await cluster.start("n2", handler: ClusterTestHandlers.echo(recording: calls))
            let a = try cluster.transport("n1")
            let group = ServiceGroup(services: [a], gracefulShutdownSignals: [], logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            let running = Task { try await group.run() }
            cluster.directory.set("n1", port: try await a.waitUntilBound())

            let pending = (0..<5).map { index in
                Task { try await a.request("hang", [UInt8(index)], to: self.n2, timeout: .seconds(120)) }
            }
            try await cluster.waitUntil("five hanging requests to arrive") { calls.count(of: "hang") == 5 }

            let started = ContinuousClock.now
            await group.triggerGracefulShutdown()
            for request in pending {
                await #expect(throws: ClusterTransportError.closed(n2)) { try await request.value }
            }
            try await running.value
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(a.boundPort == nil)
            await #expect(throws: ClusterTransportError.closed(n2)) { try await a.request("x", [], to: n2) }
            await #expect(throws: ClusterTransportError.self) { _ = try await a.waitUntilBound() }
        }
    }

    @Test func requestMadeBeforeRunWaitsForIt() async throws {
        try await ClusterTestNodes.with { cluster in
            try await cluster.start("n2")
            let a = try cluster.transport("n1")
            async let early: [UInt8] = a.request("x", [6], to: n2)
            try await Task.sleep(for: .milliseconds(50))
            let running = Task { try await a.run() }
            #expect(try await early == [6])
            running.cancel()
            try await running.value
        }
    }

    // MARK: Back-pressure

    /// A peer that stops reading fills its queue: sends to it are refused with
    /// `.peerOverloaded` after the short wait, requests to it fail within their bounds, and
    /// another peer is served meanwhile.
    @Test func stalledPeerOverloadsWithoutBlockingOthers() async throws {
        try await ClusterTestNodes.with { cluster in
            var small = ClusterTransportConfiguration.forTests()
            small.maxQueuedBytesPerPeer = 1 << 20
            small.overloadWait = .milliseconds(200)
            var stalling = ClusterTransportConfiguration.forTests()
            stalling.maxConcurrentRequestsPerConnection = 1
            let a = try await cluster.start("n1", configuration: small)
            // n2 handles one message at a time and never finishes it: it stops reading.
            try await cluster.start("n2", configuration: stalling) { _, _, _ in
                try await Task.sleep(for: .seconds(3600))
                return []
            }
            try await cluster.start("n3")

            let chunk = [UInt8](repeating: 0xab, count: 512 * 1024)
            var overloaded = false
            var sent = 0
            while sent < 1000 {
                do {
                    try await a.send("stall", chunk, to: n2)
                    sent += 1
                } catch ClusterTransportError.peerOverloaded(let node) {
                    #expect(node == n2)
                    overloaded = true
                    break
                }
            }
            #expect(overloaded, "sent \(sent) chunks without filling the queue")

            // Another peer is unaffected.
            #expect(try await a.request("x", [1], to: n3) == [1])
            // A request to the stalled peer fails within its bounds, whichever comes first.
            let error = await #expect(throws: ClusterTransportError.self) {
                try await a.request("x", [2], to: n2, timeout: .seconds(2))
            }
            #expect(error == .peerOverloaded(n2) || error == .timedOut(n2, type: "x"))
        }
    }
}
