import Crypto
import Foundation
import JWTKit
@testable import Tenancy

/// A resolver over dictionaries, editable during a test.
actor InMemoryResolver: SigningKeyResolver {
    var keys: [String: SigningKey] = [:]
    var tenants: [TenantID: Tenant] = [:]
    var failure: (any Error)?

    func signingKey(kid: String) async throws -> SigningKey? {
        if let failure { throw failure }
        return keys[kid]
    }

    func tenant(id: TenantID) async throws -> Tenant? {
        if let failure { throw failure }
        return tenants[id]
    }

    func put(_ key: SigningKey) { keys[key.kid] = key }
    func put(_ tenant: Tenant) { tenants[tenant.id] = tenant }
    func setStatus(_ status: Tenant.Status, of id: TenantID) { tenants[id]?.status = status }
    func fail(with error: (any Error)?) { failure = error }
}

struct ResolverDown: Error {}

/// A key pair for one algorithm: what the server stores and what the client signs with.
struct KeyPair: Sendable {
    var algorithm: SigningAlgorithm
    var material: SigningKey.Material
    var privateKey: TokenIssuer.PrivateKey
    /// The public key as a JWK JSON object (nil for HS256).
    var jwk: String?

    static func make(_ algorithm: SigningAlgorithm) throws -> KeyPair {
        switch algorithm {
        case .hs256:
            let secret = SecretGenerator.hs256Secret()
            return KeyPair(algorithm: .hs256, material: .hmacSecret(secret), privateKey: .hmac(secret), jwk: nil)
        case .rs256:
            let key = try JWTKit.Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivateKeyPEM)
            let (n, e) = try key.publicKey.getKeyPrimitives()
            return KeyPair(
                algorithm: .rs256, material: .publicKeyPEM(key.publicKey.pemRepresentation),
                privateKey: .rsaPEM(TestKeys.rsaPrivateKeyPEM),
                jwk: #"{"kty":"RSA","n":"\#(Base64URL.encode(n))","e":"\#(Base64URL.encode(e))"}"#)
        case .es256:
            let key = P256.Signing.PrivateKey()
            let raw = Array(key.publicKey.rawRepresentation)
            return KeyPair(
                algorithm: .es256, material: .publicKeyPEM(key.publicKey.pemRepresentation), privateKey: .p256(key),
                jwk: #"{"kty":"EC","crv":"P-256","x":"\#(Base64URL.encode(raw[0..<32]))","y":"\#(Base64URL.encode(raw[32..<64]))"}"#)
        case .edDSA:
            let key = Curve25519.Signing.PrivateKey()
            return KeyPair(
                algorithm: .edDSA, material: .publicKeyPEM(key.publicKey.pemRepresentation), privateKey: .ed25519(key),
                jwk: #"{"kty":"OKP","crv":"Ed25519","x":"\#(Base64URL.encode(key.publicKey.rawRepresentation))"}"#)
        }
    }
}

/// One tenant with one key, a verifier on a fixed clock, and helpers to sign.
struct VerifierFixture {
    static let now = Date(timeIntervalSince1970: 1_750_000_000)
    static var nowSeconds: Int64 { Int64(now.timeIntervalSince1970) }

    let resolver = InMemoryResolver()
    let tenant = Tenant(id: "tn_testtenant0000000000", slug: "acme", displayName: "Acme", plan: "pro", status: .active, createdAt: now)
    let pair: KeyPair
    let key: SigningKey
    let verifier: TokenVerifier

    init(_ algorithm: SigningAlgorithm = .hs256, material: SigningKey.Material? = nil, status: SigningKey.Status = .active) async throws {
        pair = try KeyPair.make(algorithm)
        key = SigningKey(
            kid: IDGenerator.keyID(), tenant: tenant.id, algorithm: algorithm, material: material ?? pair.material,
            status: status, createdAt: Self.now)
        verifier = TokenVerifier(resolver: resolver, now: { Self.now })
        await resolver.put(tenant)
        await resolver.put(key)
    }

    /// Claims valid at `now` for an hour.
    func claims(sub: String? = "alice", roles: [String]? = ["USER"]) -> AppTokenClaims {
        AppTokenClaims(sub: sub, roles: roles, tenant: tenant.id.rawValue, iat: Self.nowSeconds, exp: Self.nowSeconds + 3600)
    }

    func sign(_ claims: AppTokenClaims, kid: String? = nil) async throws -> String {
        try await TokenIssuer.sign(claims, kid: kid ?? key.kid, with: pair.privateKey)
    }

    func token(sub: String = "alice") async throws -> String {
        try await sign(claims(sub: sub))
    }
}

/// Builds a compact JWS by hand, for headers and payloads no signer would produce.
func handmadeToken(header: String, payload: String, signature: [UInt8] = Array("sig".utf8)) -> String {
    Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8)) + "." + Base64URL.encode(signature)
}

/// The error `body` throws, if it is a `TokenError`.
func tokenError(_ body: () async throws(TokenError) -> VerifiedToken) async -> TokenError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}
