import Crypto
import Foundation
import JWTKit
import Testing
@testable import Tenancy

@Suite("TokenVerifier")
struct TokenVerifierTests {
    // MARK: Accepted tokens

    @Test("a token signed with each algorithm's key is accepted", arguments: SigningAlgorithm.allCases)
    func tokenOfEachAlgorithmIsAccepted(_ algorithm: SigningAlgorithm) async throws {
        let fixture = try await VerifierFixture(algorithm)
        let verified = try await fixture.verifier.verify(try await fixture.sign(fixture.claims(sub: "alice", roles: ["USER", "ADMIN"])))
        #expect(verified == VerifiedToken(
            tenant: fixture.tenant.id, principal: "alice", roles: ["USER", "ADMIN"], keyId: fixture.key.kid,
            expiresAt: VerifierFixture.now.addingTimeInterval(3600), issuedAt: VerifierFixture.now))
        let context = verified.requestContext(requestId: "req-1")
        #expect(context == RequestContext(tenant: fixture.tenant.id, principal: "alice", roles: ["USER", "ADMIN"], requestId: "req-1", keyId: fixture.key.kid))
    }

    @Test("public keys registered as JWK JSON verify too", arguments: [SigningAlgorithm.rs256, .es256, .edDSA])
    func jwkPublicKeysVerify(_ algorithm: SigningAlgorithm) async throws {
        let pair = try KeyPair.make(algorithm)
        let jwk = try #require(pair.jwk)
        let fixture = try await VerifierFixture(algorithm)
        // Same private key as the fixture's pair? No: register this pair's JWK and sign with it.
        let key = SigningKey(kid: IDGenerator.keyID(), tenant: fixture.tenant.id, algorithm: algorithm, material: .publicKeyPEM(jwk), status: .active, createdAt: VerifierFixture.now)
        await fixture.resolver.put(key)
        let token = try await TokenIssuer.sign(fixture.claims(), kid: key.kid, with: pair.privateKey)
        #expect(try await fixture.verifier.verify(token).keyId == key.kid)
    }

    @Test func absentRolesClaimMeansNoRoles() async throws {
        let fixture = try await VerifierFixture()
        let verified = try await fixture.verifier.verify(try await fixture.sign(fixture.claims(roles: nil)))
        #expect(verified.roles == [])
    }

    @Test func tokenWithoutTenantClaimTakesTheKeysTenant() async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.tenant = nil
        #expect(try await fixture.verifier.verify(try await fixture.sign(claims)).tenant == fixture.tenant.id)
    }

    @Test func fractionalNumericDatesAreAccepted() async throws {
        let fixture = try await VerifierFixture()
        let now = VerifierFixture.nowSeconds
        let payload = #"{"sub":"alice","iat":\#(now).25,"exp":\#(now + 60).5}"#
        // Sign the handmade payload with the key's secret through jwt-kit's HMAC.
        let token = try await signRaw(payload: payload, kid: fixture.key.kid, pair: fixture.pair)
        let verified = try await fixture.verifier.verify(token)
        #expect(verified.expiresAt == Date(timeIntervalSince1970: Double(now + 60) + 0.5))
    }

    // MARK: Refused tokens, one per TokenError case

    @Test("malformed tokens are refused as malformed", arguments: [
        "", "abc", "a.b", "a.b.c.d", "!!!.e30.sig",
        Base64URL.encode(Array("not json".utf8)) + ".e30.c2ln",
        Base64URL.encode(Array(#"{"alg":5,"kid":"k"}"#.utf8)) + ".e30.c2ln",
        String(repeating: "a", count: TokenVerifier.maximumTokenBytes + 1),
    ])
    func malformedTokensAreRefused(_ token: String) async throws {
        let fixture = try await VerifierFixture()
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        guard case .malformedToken = error else {
            Issue.record("expected malformedToken, got \(String(describing: error))")
            return
        }
    }

    @Test func claimsOfTheWrongShapeAreMalformed() async throws {
        let fixture = try await VerifierFixture()
        let now = VerifierFixture.nowSeconds
        let token = try await signRaw(payload: #"{"sub":"alice","roles":"ADMIN","exp":\#(now + 60)}"#, kid: fixture.key.kid, pair: fixture.pair)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        guard case .malformedToken = error else {
            Issue.record("expected malformedToken, got \(String(describing: error))")
            return
        }
    }

    @Test func tokenWithoutKidIsRefused() async throws {
        let fixture = try await VerifierFixture()
        let token = try await TokenIssuer.sign(fixture.claims(), kid: nil, with: fixture.pair.privateKey)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .missingKeyId)
    }

    @Test func unknownKidIsRefused() async throws {
        let fixture = try await VerifierFixture()
        let token = try await fixture.sign(fixture.claims(), kid: "key_doesnotexist")
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .unknownKey("key_doesnotexist"))
    }

    @Test func revokedKeyIsRefused() async throws {
        let fixture = try await VerifierFixture(status: .revoked)
        let token = try await fixture.token()
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .revokedKey(fixture.key.kid))
    }

    @Test("algorithms other than the four are refused", arguments: ["none", "HS512", "PS256", "RS384"])
    func unsupportedAlgorithmsAreRefused(_ alg: String) async throws {
        let fixture = try await VerifierFixture()
        let now = VerifierFixture.nowSeconds
        let token = handmadeToken(header: #"{"alg":"\#(alg)","kid":"\#(fixture.key.kid)"}"#, payload: #"{"sub":"alice","exp":\#(now + 60)}"#)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .unsupportedAlgorithm(alg))
    }

    @Test func tokenSignedWithAnotherAlgorithmThanTheKeysIsRefused() async throws {
        let fixture = try await VerifierFixture(.hs256)
        let es256 = try KeyPair.make(.es256)
        let token = try await TokenIssuer.sign(fixture.claims(), kid: fixture.key.kid, with: es256.privateKey)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .algorithmMismatch(token: "ES256", key: .hs256))
    }

    @Test("algorithm confusion: an HS256 token keyed with an RS256 key's public PEM is refused")
    func rsaPublicKeyUsedAsHMACSecretIsRefused() async throws {
        let fixture = try await VerifierFixture(.rs256)
        guard case .publicKeyPEM(let pem) = fixture.key.material else {
            Issue.record("fixture key has no PEM")
            return
        }
        // The classic attack: sign with HMAC, using the (public) PEM text as the secret.
        let attacker = JWTKeyCollection()
        await attacker.add(hmac: HMACKey(from: Array(pem.utf8)), digestAlgorithm: .sha256, kid: JWKIdentifier(string: fixture.key.kid))
        let forged = try await attacker.sign(fixture.claims(sub: "mallory", roles: ["ADMIN"]), kid: JWKIdentifier(string: fixture.key.kid))
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(forged) } == .algorithmMismatch(token: "HS256", key: .rs256))
    }

    @Test("a signature that does not verify is refused", arguments: SigningAlgorithm.allCases)
    func badSignatureIsRefused(_ algorithm: SigningAlgorithm) async throws {
        let fixture = try await VerifierFixture(algorithm)
        let other = try KeyPair.make(algorithm)
        let forged: String
        if algorithm == .rs256 {
            // Only one RSA test key: tamper with the payload instead of signing with another key.
            let token = try await fixture.token(sub: "alice")
            let parts = token.split(separator: ".").map(String.init)
            let payload = Base64URL.encode(Array(#"{"sub":"mallory","exp":\#(VerifierFixture.nowSeconds + 60)}"#.utf8))
            forged = parts[0] + "." + payload + "." + parts[2]
        } else {
            forged = try await TokenIssuer.sign(fixture.claims(), kid: fixture.key.kid, with: other.privateKey)
        }
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(forged) } == .badSignature)
    }

    @Test func signatureOfTheWrongLengthIsABadSignature() async throws {
        let fixture = try await VerifierFixture(.es256)
        let token = try await fixture.token()
        let truncated = String(token.dropLast(10))
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(truncated) } == .badSignature)
    }

    @Test func tokenWithoutExpIsRefused() async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.exp = nil
        let token = try await fixture.sign(claims)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .missingExpiry)
    }

    @Test func tokenWithoutSubIsRefused() async throws {
        let fixture = try await VerifierFixture()
        for sub in [nil, ""] as [String?] {
            let token = try await fixture.sign(fixture.claims(sub: sub))
            #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .missingSubject)
        }
    }

    @Test func tenantClaimNamingAnotherTenantIsRefused() async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.tenant = "tn_someoneelse000000000"
        let token = try await fixture.sign(claims)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
            == .tenantMismatch(claimed: "tn_someoneelse000000000", key: fixture.tenant.id))
    }

    @Test func suspendedDeletedAndUnknownTenantsAreRefused() async throws {
        let fixture = try await VerifierFixture()
        let token = try await fixture.token()
        await fixture.resolver.setStatus(.suspended, of: fixture.tenant.id)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .tenantSuspended(fixture.tenant.id))
        await fixture.resolver.setStatus(.deleted, of: fixture.tenant.id)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) } == .tenantDeleted(fixture.tenant.id))

        // A key whose tenant is gone.
        let orphan = SigningKey(kid: IDGenerator.keyID(), tenant: "tn_gone", algorithm: .hs256, material: fixture.key.material, status: .active, createdAt: VerifierFixture.now)
        await fixture.resolver.put(orphan)
        var claims = fixture.claims()
        claims.tenant = nil
        let orphanToken = try await fixture.sign(claims, kid: orphan.kid)
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(orphanToken) } == .unknownTenant("tn_gone"))
    }

    @Test func resolverFailureIsATemporaryError() async throws {
        let fixture = try await VerifierFixture()
        let token = try await fixture.token()
        await fixture.resolver.fail(with: ResolverDown())
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        guard case .keyStoreUnavailable = error else {
            Issue.record("expected keyStoreUnavailable, got \(String(describing: error))")
            return
        }
        #expect(error?.isTemporary == true)
        #expect(TokenError.expired.isTemporary == false)
    }

    // MARK: Clock skew (default 30 s)

    @Test("exp is honoured with the clock skew", arguments: [(-29, true), (-31, false), (-3600, false), (10, true)])
    func expiryHonoursSkew(_ offset: Int64, _ accepted: Bool) async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.iat = VerifierFixture.nowSeconds - 7200
        claims.exp = VerifierFixture.nowSeconds + offset
        let token = try await fixture.sign(claims)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == (accepted ? nil : .expired))
    }

    @Test("nbf is honoured with the clock skew", arguments: [(29, true), (31, false), (-100, true)])
    func notBeforeHonoursSkew(_ offset: Int64, _ accepted: Bool) async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.nbf = VerifierFixture.nowSeconds + offset
        let token = try await fixture.sign(claims)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == (accepted ? nil : .notYetValid))
    }

    @Test("iat in the future beyond the skew is not yet valid", arguments: [(29, true), (31, false)])
    func issuedAtInTheFutureHonoursSkew(_ offset: Int64, _ accepted: Bool) async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.iat = VerifierFixture.nowSeconds + offset
        claims.exp = VerifierFixture.nowSeconds + 3600
        let token = try await fixture.sign(claims)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == (accepted ? nil : .notYetValid))
    }

    @Test func skewIsConfigurable() async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.exp = VerifierFixture.nowSeconds - 5
        let token = try await fixture.sign(claims)
        let strict = TokenVerifier(resolver: fixture.resolver, clockSkew: 0, now: { VerifierFixture.now })
        let lenient = TokenVerifier(resolver: fixture.resolver, clockSkew: 10, now: { VerifierFixture.now })
        #expect(await tokenError { () async throws(TokenError) in try await strict.verify(token) } == .expired)
        #expect(try await lenient.verify(token).principal == "alice")
    }

    @Test func tokenIsRefusedExactlyAtExpWithoutSkew() async throws {
        let fixture = try await VerifierFixture()
        var claims = fixture.claims()
        claims.exp = VerifierFixture.nowSeconds
        let token = try await fixture.sign(claims)
        let strict = TokenVerifier(resolver: fixture.resolver, clockSkew: 0, now: { VerifierFixture.now })
        #expect(await tokenError { () async throws(TokenError) in try await strict.verify(token) } == .expired)
    }

    // MARK: Short HS256 secrets

    @Test("a stored HS256 secret under 32 bytes is refused before jwt-kit sees it (no trap)")
    func shortStoredSecretIsUnusable() async throws {
        let short = Array(repeating: UInt8(7), count: 16)
        let fixture = try await VerifierFixture(.hs256, material: .hmacSecret(short))
        // A token "signed" with the short secret, made by hand (jwt-kit would trap on the key).
        let now = VerifierFixture.nowSeconds
        let token = handmadeToken(header: #"{"alg":"HS256","kid":"\#(fixture.key.kid)"}"#, payload: #"{"sub":"a","exp":\#(now + 60)}"#,
                                  signature: Array(HMAC<SHA256>.authenticationCode(for: Array("x".utf8), using: SymmetricKey(data: short))))
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == .unusableKey(kid: fixture.key.kid, reason: "HS256 secret must be at least 32 bytes (got 16)"))
    }

    @Test func unreadableStoredPublicKeyIsUnusable() async throws {
        let fixture = try await VerifierFixture(.es256, material: .publicKeyPEM("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----"))
        let token = try await fixture.token()
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        guard case .unusableKey(let kid, _) = error else {
            Issue.record("expected unusableKey, got \(String(describing: error))")
            return
        }
        #expect(kid == fixture.key.kid)
    }

    // MARK: Cache

    @Test func replacedKeyMaterialIsUsedWithoutForget() async throws {
        let fixture = try await VerifierFixture()
        _ = try await fixture.verifier.verify(try await fixture.token())  // caches the parsed key
        let newSecret = SecretGenerator.hs256Secret()
        var replaced = fixture.key
        replaced.material = .hmacSecret(newSecret)
        await fixture.resolver.put(replaced)
        let token = try await TokenIssuer.sign(fixture.claims(), kid: fixture.key.kid, with: .hmac(newSecret))
        #expect(try await fixture.verifier.verify(token).keyId == fixture.key.kid)
        // And the old secret no longer verifies.
        let oldToken = try await fixture.token()
        #expect(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(oldToken) } == .badSignature)
    }

    @Test func forgetDropsTheParsedKeyAndVerificationStillWorks() async throws {
        let fixture = try await VerifierFixture()
        #expect(fixture.verifier.cache.collection(for: fixture.key) == nil)
        _ = try await fixture.verifier.verify(try await fixture.token())
        #expect(fixture.verifier.cache.collection(for: fixture.key) != nil)
        fixture.verifier.forget(kid: fixture.key.kid)
        #expect(fixture.verifier.cache.collection(for: fixture.key) == nil)
        #expect(try await fixture.verifier.verify(try await fixture.token()).principal == "alice")
        fixture.verifier.forgetAll()
        #expect(fixture.verifier.cache.collection(for: fixture.key) == nil)
    }

    @Test func cacheHoldsOneParsedKeyPerKidUntilForgotten() async throws {
        let key = SigningKey(kid: "key_a", tenant: "tn_a", algorithm: .hs256, material: .hmacSecret(SecretGenerator.hs256Secret()), status: .active, createdAt: Date())
        let cache = VerificationKeyCache()
        let collection = await VerificationKey.hmac(SecretGenerator.hs256Secret()).makeCollection(kid: key.kid)
        cache.store(collection, for: key)
        #expect(cache.collection(for: key) === collection)
        var other = key
        other.material = .hmacSecret(SecretGenerator.hs256Secret())
        #expect(cache.collection(for: other) == nil)
        cache.remove(kid: key.kid)
        #expect(cache.collection(for: key) == nil)
    }

    // MARK: Reasons

    @Test func everyErrorHasADistinctReason() {
        let all: [TokenError] = [
            .malformedToken("x"), .missingKeyId, .unknownKey("k"), .revokedKey("k"), .unsupportedAlgorithm("none"),
            .algorithmMismatch(token: "HS256", key: .rs256), .badSignature, .expired, .notYetValid, .missingExpiry,
            .missingSubject, .tenantMismatch(claimed: "a", key: "b"), .tenantSuspended("t"), .tenantDeleted("t"),
            .unknownTenant("t"), .unusableKey(kid: "k", reason: "r"), .keyStoreUnavailable("down"),
        ]
        let reasons = all.map(\.reason)
        #expect(Set(reasons).count == all.count)
        #expect(reasons.allSatisfy { !$0.isEmpty })
        #expect(TokenError.revokedKey("key_x").reason == "signing key key_x is revoked")
    }
}

/// Signs an arbitrary JSON payload with the pair's private key (HS256 or other), via jwt-kit.
func signRaw(payload: String, kid: String, pair: KeyPair) async throws -> String {
    guard case .hmac(let secret) = pair.privateKey else { throw TokenError.unusableKey(kid: kid, reason: "signRaw supports HS256 only") }
    let header = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(kid)","typ":"JWT"}"#.utf8))
    let body = Base64URL.encode(Array(payload.utf8))
    let mac = HMAC<SHA256>.authenticationCode(for: Array("\(header).\(body)".utf8), using: SymmetricKey(data: secret))
    return "\(header).\(body).\(Base64URL.encode(Array(mac)))"
}
