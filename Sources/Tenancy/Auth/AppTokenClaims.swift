import Foundation
import JWTKit

/// The claims of a TopGun app JWT, as minted by `TokenIssuer`. Times are NumericDates (whole
/// seconds since 1970). Every field is optional so tests can mint deliberately broken tokens.
public struct AppTokenClaims: Codable, Sendable, Equatable, JWTPayload {
    /// The principal (user id).
    public var sub: String?
    public var roles: [String]?
    /// The tenant id; optional, but when present it must equal the key's tenant.
    public var tenant: String?
    public var iat: Int64?
    public var nbf: Int64?
    public var exp: Int64?

    public init(sub: String?, roles: [String]? = nil, tenant: String? = nil, iat: Int64? = nil, nbf: Int64? = nil, exp: Int64? = nil) {
        self.sub = sub
        self.roles = roles
        self.tenant = tenant
        self.iat = iat
        self.nbf = nbf
        self.exp = exp
    }

    /// Claims for a token valid from `now` for `ttl` seconds.
    public init(subject: String, roles: [String], tenant: TenantID?, now: Date, ttl: TimeInterval) {
        let issued = Int64(now.timeIntervalSince1970.rounded(.down))
        self.init(sub: subject, roles: roles, tenant: tenant?.rawValue, iat: issued, exp: issued + Int64(ttl.rounded(.up)))
    }

    /// Time claims are checked by `TokenVerifier` with its injectable clock and skew, not here.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The claims as received: NumericDates may be fractional (RFC 7519 §2), so they decode as
/// Double. Unknown claims (iss, aud, ...) are ignored.
struct ReceivedClaims: Codable, Sendable, JWTPayload {
    var sub: String?
    var roles: [String]?
    var tenant: String?
    var iat: Double?
    var nbf: Double?
    var exp: Double?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
