import Crypto
import Foundation
import JWTKit

/// Mints app JWTs: `{sub, roles, tenant, iat, exp}` with the key's `kid` in the header.
///
/// Production tokens are minted by the customer's own backend; this type serves
/// `topgun token`, `topgun dev` and tests, which hold the tenant's HS256 secret.
public struct TokenIssuer: Sendable {
    /// The key tokens are signed with (HS256, active or not: the verifier judges that).
    public let key: SigningKey
    private let collection: JWTKeyCollection

    /// Prepares to mint with an HS256 key. Throws `TokenError.unusableKey` if the key is not
    /// HS256 with a secret of at least 32 bytes (checked before jwt-kit sees the bytes).
    public init(key: SigningKey) async throws(TokenError) {
        guard key.algorithm == .hs256, case .hmacSecret = key.material else {
            throw .unusableKey(kid: key.kid, reason: "only HS256 keys with a shared secret can mint tokens here")
        }
        let parsed: VerificationKey
        do {
            parsed = try VerificationKey(algorithm: key.algorithm, material: key.material)
        } catch {
            throw .unusableKey(kid: key.kid, reason: error.reason)
        }
        self.key = key
        self.collection = await parsed.makeCollection(kid: key.kid)
    }

    /// A token for `subject` valid from `now` for `ttl` seconds (default one hour). The
    /// `tenant` claim is included unless `includeTenantClaim` is false.
    public func mint(
        subject: String,
        roles: [String] = [],
        ttl: TimeInterval = 3600,
        now: Date = Date(),
        includeTenantClaim: Bool = true
    ) async throws -> String {
        let claims = AppTokenClaims(
            subject: subject, roles: roles, tenant: includeTenantClaim ? key.tenant : nil, now: now, ttl: ttl)
        return try await sign(claims)
    }

    /// Signs arbitrary claims with this key (tests use it for expired or odd tokens).
    public func sign(_ claims: AppTokenClaims) async throws -> String {
        try await collection.sign(claims, kid: JWKIdentifier(string: key.kid))
    }

    // MARK: Test support

    /// A private key to sign test tokens with, for each algorithm a tenant key may use.
    public enum PrivateKey: Sendable {
        /// HS256; at least 32 bytes (shorter secrets are refused, never handed to jwt-kit).
        case hmac([UInt8])
        /// RS256: a PKCS#8 or PKCS#1 PEM private key of at least 2048 bits.
        case rsaPEM(String)
        /// ES256.
        case p256(P256.Signing.PrivateKey)
        /// EdDSA.
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    /// Signs `claims` with `privateKey`, naming `kid` in the header (nil: no kid). The header's
    /// `alg` is the private key's algorithm. For tests and tools; servers only verify.
    public static func sign(_ claims: AppTokenClaims, kid: String?, with privateKey: PrivateKey) async throws -> String {
        let collection = JWTKeyCollection()
        let identifier = kid.map { JWKIdentifier(string: $0) }
        switch privateKey {
        case .hmac(let secret):
            guard secret.count >= SecretGenerator.minimumHS256SecretBytes else {
                throw TokenError.unusableKey(
                    kid: kid ?? "-", reason: "HS256 secret must be at least \(SecretGenerator.minimumHS256SecretBytes) bytes (got \(secret.count))")
            }
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: identifier)
        case .rsaPEM(let pem):
            await collection.add(rsa: try JWTKit.Insecure.RSA.PrivateKey(pem: pem), digestAlgorithm: .sha256, kid: identifier)
        case .p256(let key):
            await collection.add(ecdsa: try ES256PrivateKey(backing: key), kid: identifier)
        case .ed25519(let key):
            await collection.add(eddsa: EdDSA.PrivateKey(backing: key), kid: identifier)
        }
        return try await collection.sign(claims, kid: identifier)
    }
}
