import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// The authentication handshake of one connection (protocol.md §6.3), as a pure state
/// machine in the style of postgres-nio's: events in, actions out; the socket code performs
/// the actions. Every rule is tested without a socket.
///
/// - `AUTH_REQUIRED` on connect; `AUTH` accepted at any time before authentication.
/// - `PING` is always answered, even before authentication.
/// - `DEVICE_HELLO` is ignored (this server always requires a token).
/// - Any other message before authentication gets `ERROR 401`.
/// - A duplicate `AUTH` after success is ignored silently (the client sends one on open
///   and another in reply to `AUTH_REQUIRED`; re-acking would make it re-send its ops).
/// - A failed `AUTH` gets `AUTH_FAIL` with the reason, then the connection closes (4001);
///   so does a good token of another tenant than the URL names (`/t/{tenantID}/ws`).
/// - A good token is admitted under the tenant's connection quota (`admit`, then
///   `admitted`): past it, close 1013 rather than AUTH_FAIL (the token is good, and a client
///   that saw AUTH_FAIL would throw it away).
/// - No admitted `AUTH` within the deadline: close 4001 (`deadlineExpired`, from a timer:
///   the connection keeps its handshake behind a lock, `SharedHandshake`).
public struct SessionHandshake: Sendable {
    public enum State: Sendable, Equatable {
        case awaitingAuth
        /// A token is being verified; frames that arrive meanwhile wait their turn.
        case verifying
        /// The token is good; the connection quota is being checked.
        case admitting(RequestContext)
        case authenticated(RequestContext)
        case closed
    }

    public enum Action: Sendable, Equatable {
        case send(TopGunMessage)
        /// Verify this token, then report with `verified(_:)`.
        case verify(token: String)
        /// Hand an authenticated message to its handler.
        case dispatch(TopGunMessage, RequestContext)
        /// Count the connection under its tenant's quota, then report with `admitted(_:)`.
        case admit(RequestContext)
        case close(CloseCode, reason: String)
        case none
    }

    public private(set) var state: State = .awaitingAuth
    /// The tenant named in the URL, which the token's tenant must equal.
    public let pathTenant: TenantID?

    public init(pathTenant: TenantID? = nil) {
        self.pathTenant = pathTenant
    }

    public var context: RequestContext? {
        if case .authenticated(let context) = state { return context }
        return nil
    }

    public mutating func connected() -> Action {
        .send(.authRequired(AuthRequired()))
    }

    public mutating func received(_ message: TopGunMessage, nowMillis: Int64) -> Action {
        if case .ping(let ping) = message, state != .closed {
            return .send(.pong(Pong(timestamp: ping.timestamp, serverTime: Double(nowMillis))))
        }
        switch state {
        case .closed:
            return .none
        case .verifying, .admitting:
            // The inbound loop awaits verification before reading on; nothing arrives here.
            return .none
        case .awaitingAuth:
            switch message {
            case .auth(let auth):
                state = .verifying
                return .verify(token: auth.token)
            case .deviceHello:
                return .none
            default:
                return .send(.errorMessage(.make(.unauthorized, "not authenticated: send AUTH with a token first")))
            }
        case .authenticated(let context):
            switch message {
            case .auth, .deviceHello:
                return .none
            default:
                return .dispatch(message, context)
            }
        }
    }

    /// The outcome of `verify`: a context, or the reason for refusing.
    public mutating func verified(_ result: Result<RequestContext, RefusedToken>) -> [Action] {
        guard state == .verifying else { return [] }
        switch result {
        case .success(let context):
            if let pathTenant, pathTenant != context.tenant {
                return refuse(RefusedToken(reason: Self.otherTenantThanTheURL))
            }
            state = .admitting(context)
            return [.admit(context)]
        case .failure(let refusal):
            return refuse(refusal)
        }
    }

    /// The outcome of `admit`: nil when the connection is counted, the refusal otherwise.
    public mutating func admitted(_ refusal: QuotaRefusal?) -> [Action] {
        guard case .admitting(let context) = state else { return [] }
        if let refusal {
            state = .closed
            return [.close(.tryAgainLater, reason: refusal.message)]
        }
        state = .authenticated(context)
        return [.send(.authAck(AuthAck(protocolVersion: 1, userId: context.principal)))]
    }

    public static let otherTenantThanTheURL = "the token's tenant does not match the tenant in the URL"

    private mutating func refuse(_ refusal: RefusedToken) -> [Action] {
        state = .closed
        return [
            .send(.authFail(AuthFail(error: refusal.reason, code: WireErrorCode.unauthorized.rawValue))),
            .close(.unauthorized, reason: refusal.reason),
        ]
    }

    public mutating func deadlineExpired() -> Action {
        switch state {
        case .awaitingAuth, .verifying, .admitting:
            state = .closed
            return .close(.unauthorized, reason: "authentication deadline passed")
        default:
            return .none
        }
    }

    /// The connection is going away for another reason.
    public mutating func close() {
        state = .closed
    }
}

/// Why a token was refused.
public struct RefusedToken: Error, Sendable, Equatable {
    /// What the client is told (`AUTH_FAIL.error`, the close reason, a 401): a short fixed
    /// text that never repeats client input.
    public var reason: String
    /// The whole story, for the log (with the request id); may quote the token's contents.
    public var detail: String

    public init(reason: String, detail: String? = nil) {
        self.reason = reason
        self.detail = detail ?? reason
    }
}

/// A connection's handshake, shared by its inbound loop and its deadline timer.
public final class SharedHandshake: Sendable {
    private let handshake: Mutex<SessionHandshake>

    public init(_ handshake: SessionHandshake) {
        self.handshake = Mutex(handshake)
    }

    public func withLock<Result: Sendable>(_ body: (inout SessionHandshake) -> Result) -> Result {
        handshake.withLock { body(&$0) }
    }
}
