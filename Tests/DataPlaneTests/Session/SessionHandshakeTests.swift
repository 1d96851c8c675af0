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

    /// Verified, then admitted under the connection quota, then acknowledged.
    static func authenticated(pathTenant: TenantID? = nil) -> SessionHandshake {
        var handshake = SessionHandshake(pathTenant: pathTenant)
        _ = handshake.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = handshake.verified(.success(context))
        _ = handshake.admitted(nil)
        return handshake
    }

    @Test func successfulAuthIsAdmittedThenAckedWithTheUserId() {
        var handshake = SessionHandshake()
        #expect(handshake.received(.auth(Auth(token: "t")), nowMillis: 0) == .verify(token: "t"))
        #expect(handshake.verified(.success(Self.context)) == [.admit(Self.context)])
        #expect(handshake.context == nil, "not authenticated before admission")
        #expect(handshake.admitted(nil) == [.send(.authAck(AuthAck(protocolVersion: 1, userId: "alice")))])
        #expect(handshake.context == Self.context)
        #expect(handshake.admitted(nil).isEmpty, "admitted once")
    }

    @Test func aConnectionPastTheQuotaClosesWith1013NotAuthFail() {
        var handshake = SessionHandshake()
        _ = handshake.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = handshake.verified(.success(Self.context))
        let refusal = QuotaGate.connection(open: 5, limit: 5)
        #expect(handshake.admitted(refusal) == [.close(.tryAgainLater, reason: "quota max_connections (5) reached")])
        #expect(handshake.state == .closed)
        #expect(handshake.received(.topicSub(TopicSub(topic: "t")), nowMillis: 0) == .none)
    }

    @Test func aTokenOfAnotherTenantThanTheURLIsRefused() {
        var handshake = SessionHandshake(pathTenant: "tn_other")
        _ = handshake.received(.auth(Auth(token: "t")), nowMillis: 0)
        let reason = SessionHandshake.otherTenantThanTheURL
        #expect(handshake.verified(.success(Self.context)) == [.send(.authFail(AuthFail(error: reason, code: 401))), .close(.unauthorized, reason: reason)])
        #expect(handshake.state == .closed)
        #expect(Self.authenticated(pathTenant: "tn_a").context == Self.context, "the URL's own tenant is admitted")
    }

    @Test func duplicateAuthIsIgnoredSilently() {
        var handshake = Self.authenticated()
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
        var handshake = Self.authenticated()
        let message = TopGunMessage.topicSub(TopicSub(topic: "news"))
        #expect(handshake.received(message, nowMillis: 0) == .dispatch(message, Self.context))
    }

    @Test func deadlineClosesOnlyUnauthenticatedConnections() {
        var waiting = SessionHandshake()
        #expect(waiting.deadlineExpired() == .close(.unauthorized, reason: "authentication deadline passed"))
        var done = Self.authenticated()
        #expect(done.deadlineExpired() == .none)
        // A token verified but not yet admitted when the deadline passes: closed, and the
        // admission that follows changes nothing.
        var admitting = SessionHandshake()
        _ = admitting.received(.auth(Auth(token: "t")), nowMillis: 0)
        _ = admitting.verified(.success(Self.context))
        #expect(admitting.deadlineExpired() == .close(.unauthorized, reason: "authentication deadline passed"))
        #expect(admitting.admitted(nil).isEmpty)
        #expect(admitting.context == nil)
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
