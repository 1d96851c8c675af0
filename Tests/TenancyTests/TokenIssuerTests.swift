import Foundation
import JWTKit
import Testing
@testable import Tenancy

@Suite("TokenIssuer")
struct TokenIssuerTests {
    @Test func mintedTokenCarriesKidAndTheDocumentedClaims() async throws {
        let fixture = try await VerifierFixture()
        let issuer = try await TokenIssuer(key: fixture.key)
        let token = try await issuer.mint(subject: "bob", roles: ["USER"], ttl: 600, now: VerifierFixture.now)

        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        let header = try JSONSerialization.jsonObject(with: Data(try #require(Base64URL.decode(parts[0])))) as? [String: Any]
        #expect(header?["kid"] as? String == fixture.key.kid)
        #expect(header?["alg"] as? String == "HS256")
        let claims = try JSONDecoder().decode(AppTokenClaims.self, from: Data(try #require(Base64URL.decode(parts[1]))))
        #expect(claims == AppTokenClaims(
            sub: "bob", roles: ["USER"], tenant: fixture.tenant.id.rawValue,
            iat: VerifierFixture.nowSeconds, exp: VerifierFixture.nowSeconds + 600))

        let verified = try await fixture.verifier.verify(token)
        #expect(verified.principal == "bob")
        #expect(verified.expiresAt == VerifierFixture.now.addingTimeInterval(600))
    }

    @Test func tenantClaimCanBeLeftOut() async throws {
        let fixture = try await VerifierFixture()
        let token = try await TokenIssuer(key: fixture.key).mint(subject: "bob", now: VerifierFixture.now, includeTenantClaim: false)
        let claims = try JSONDecoder().decode(AppTokenClaims.self, from: Data(try #require(Base64URL.decode(token.split(separator: ".")[1]))))
        #expect(claims.tenant == nil)
        #expect(try await fixture.verifier.verify(token).tenant == fixture.tenant.id)
    }

    @Test func onlyHS256KeysWithALongEnoughSecretCanMint() async throws {
        let fixture = try await VerifierFixture(.es256)
        await #expect(throws: TokenError.self) { _ = try await TokenIssuer(key: fixture.key) }

        var short = try await VerifierFixture().key
        short.material = .hmacSecret(Array(repeating: 1, count: 31))
        do {
            _ = try await TokenIssuer(key: short)
            Issue.record("a 31-byte secret was accepted")
        } catch {
            #expect(error == .unusableKey(kid: short.kid, reason: "HS256 secret must be at least 32 bytes (got 31)"))
        }
    }

    @Test func signingWithAShortSecretThrowsInsteadOfTrapping() async throws {
        await #expect(throws: TokenError.self) {
            _ = try await TokenIssuer.sign(AppTokenClaims(sub: "a"), kid: "key_x", with: .hmac(Array(repeating: 1, count: 8)))
        }
    }
}
