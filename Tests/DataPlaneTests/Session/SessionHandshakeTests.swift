import Testing
import Tenancy
import TopGunWire
@testable import DataPlane

@Suite struct SessionHandshakeTests {
    static let context = RequestContext(tenant: "tn_a", principal: "alice", roles: [], requestId: "r1", keyId: "key_1")

    @Test func connectSendsAuthRequired() {
        var handshake = SessionHandshake()
        #expect(handshake.connected() == .send(.authRequired(AuthRequired())))
    }

    @Test func pingIsAnsweredBeforeAuthentication() {
        var handshake = SessionHandshake()
        #expect(handshake.received(.ping(Ping(timestamp: 42)), nowMillis: 1000) == .send(.pong(Pong(timestamp: 42, serverTime: 1000))))
        #expect(handshake.state == .awaitingAuth)
    }

    @Test func dataBeforeAuthGetsError401AndKeepsTheConnection() {
        var handshake = SessionHandshake()
        guard case .send(.errorMessage(let error)) = handshake.received(.topicSub(TopicSub(topic: "t")), nowMillis: 0) else {
            Issue.record("expected an ERROR")
            return
        }
        #expect(error.code == 401)
        #expect(handshake.state == .awaitingAuth)
    }

    @Test func deviceHelloIsIgnoredInAuthMode() {
        var handshake = SessionHandshake()
        #expect(handshake.received(.deviceHello(DeviceHello()), nowMillis: 0) == .none)
    }

    @Test func successfulAuthAcksWithTheUserId() {
        var handshake = SessionHandshake()
        #expect(handshake.received(.auth(Auth(token: "t")), nowMillis: 0) == .verify(token: "t"))
        #expect(handshake.verified(.success(Self.context)) == [.send(.authAck(AuthAck(protocolVersion: 1, userId: "alice")))])
        #expect(handshake.context == Self.context)
    }

    @Test func duplicateAuthIsIgnoredSilently() {
        var handshake = SessionHandshake()
        _ = handshake.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = handshake.verified(.success(Self.context))
        #expect(handshake.received(.auth(Auth(token: "t")), nowMillis: 0) == .none)
        #expect(handshake.context == Self.context)
    }

    @Test func failedAuthSendsReasonThenCloses4001() {
        var handshake = SessionHandshake()
        _ = handshake.received(.auth(Auth(token: "bad")), nowMillis: 0)
        let actions = handshake.verified(.failure(RefusedToken(reason: "token expired")))
        #expect(actions == [.send(.authFail(AuthFail(error: "token expired", code: 401))), .close(.unauthorized, reason: "token expired")])
        #expect(handshake.state == .closed)
        #expect(handshake.received(.ping(Ping(timestamp: 1)), nowMillis: 0) == .none)
    }

    @Test func authenticatedMessagesAreDispatchedWithTheContext() {
        var handshake = SessionHandshake()
        _ = handshake.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = handshake.verified(.success(Self.context))
        let message = TopGunMessage.topicSub(TopicSub(topic: "news"))
        #expect(handshake.received(message, nowMillis: 0) == .dispatch(message, Self.context))
    }

    @Test func deadlineClosesOnlyUnauthenticatedConnections() {
        var waiting = SessionHandshake()
        #expect(waiting.deadlineExpired() == .close(.unauthorized, reason: "authentication deadline passed"))
        var done = SessionHandshake()
        _ = done.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = done.verified(.success(Self.context))
        #expect(done.deadlineExpired() == .none)
    }

    @Test(arguments: [("/", nil), ("/ws", nil), ("/ws?x=1", nil), ("/t/tn_abc/ws", "tn_abc")] as [(String, String?)])
    func webSocketPathsAreRecognised(path: String, tenant: String?) {
        let route = WebSocketRoute(path: path)
        #expect(route != nil)
        #expect(route?.tenant?.rawValue == tenant)
    }

    @Test(arguments: ["/sync", "/t//ws", "/t/a/b/ws", "/wss", "/health"])
    func otherPathsAreNotUpgraded(path: String) {
        #expect(WebSocketRoute(path: path) == nil)
    }
}

@Suite struct TokenBucketTests {
    @Test func burstThenRefillAtTheRate() {
        var bucket = TokenBucket(capacity: 10, ratePerSecond: 100, nowNanos: 0)
        let taken1 = bucket.take(10, nowNanos: 0)
        #expect(taken1)
        let taken2 = bucket.take(1, nowNanos: 0)
        #expect(!taken2)
        #expect(bucket.millisUntilAvailable(1) == 10)
        let taken3 = bucket.take(1, nowNanos: 10_000_000)
        #expect(taken3)  // 10 ms later: one token
        let taken4 = bucket.take(5, nowNanos: 20_000_000)
        #expect(!taken4)
        let taken5 = bucket.take(10, nowNanos: 1_000_000_000)
        #expect(taken5)  // capped at capacity
        let taken6 = bucket.take(1, nowNanos: 1_000_000_000)
        #expect(!taken6)
    }
}
