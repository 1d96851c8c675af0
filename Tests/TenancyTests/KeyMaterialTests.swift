import Crypto
import Foundation
import Testing
@testable import Tenancy

@Suite("Key material validation")
struct KeyMaterialTests {
    @Test("the material of each algorithm's key pair is valid", arguments: SigningAlgorithm.allCases)
    func generatedMaterialIsValid(_ algorithm: SigningAlgorithm) throws {
        let pair = try KeyPair.make(algorithm)
        try SigningKey.validate(pair.material, for: algorithm)
        if let jwk = pair.jwk { try SigningKey.validate(.publicKeyPEM(jwk), for: algorithm) }
    }

    @Test func pemWithEscapedNewlinesIsAccepted() throws {
        guard case .publicKeyPEM(let pem) = try KeyPair.make(.es256).material else { return }
        try SigningKey.validate(.publicKeyPEM(pem.replacingOccurrences(of: "\n", with: "\\n")), for: .es256)
    }

    @Test("invalid material is refused with a reason", arguments: [
        (SigningAlgorithm.hs256, SigningKey.Material.hmacSecret(Array(repeating: 1, count: 31)), "at least 32 bytes"),
        (.hs256, .hmacSecret(Array(repeating: 1, count: 2000)), "at most 1024 bytes"),
        (.hs256, .publicKeyPEM("-----BEGIN PUBLIC KEY-----"), "needs a shared secret"),
        (.rs256, .hmacSecret(Array(repeating: 1, count: 32)), "needs a public key"),
        (.rs256, .publicKeyPEM("hello"), "PEM"),
        (.rs256, .publicKeyPEM(TestKeys.smallRSAPublicKeyPEM), "not a valid RS256 public key"),
        (.rs256, .publicKeyPEM(TestKeys.rsaPrivateKeyPEM), "private key"),
        (.es256, .publicKeyPEM(TestKeys.p384PublicKeyPEM), "not a valid ES256 public key"),
        (.edDSA, .publicKeyPEM(TestKeys.p384PublicKeyPEM), "not a valid EdDSA public key"),
        (.es256, .publicKeyPEM(#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#), "private key"),
        (.es256, .publicKeyPEM(#"{"kty":"RSA","n":"AA","e":"AQAB"}"#), "ES256 JWK needs"),
        (.edDSA, .publicKeyPEM(#"{"kty":"OKP","crv":"Ed25519","x":"AA","alg":"ES256"}"#), "does not match"),
        (.edDSA, .publicKeyPEM("{not json"), "not a valid JWK"),
    ])
    func invalidMaterialIsRefused(_ algorithm: SigningAlgorithm, _ material: SigningKey.Material, _ reasonPart: String) {
        do {
            try SigningKey.validate(material, for: algorithm)
            Issue.record("accepted invalid \(algorithm.rawValue) material")
        } catch {
            #expect(error.reason.contains(reasonPart), "reason was: \(error.reason)")
        }
    }

    @Test func rsaKeyRegisteredAsES256IsRefused() throws {
        let rsa = try KeyPair.make(.rs256)
        #expect(throws: KeyMaterialError.self) { try SigningKey.validate(rsa.material, for: .es256) }
        #expect(throws: KeyMaterialError.self) { try SigningKey.validate(rsa.material, for: .edDSA) }
    }
}
