import Foundation
import Testing
@testable import Tenancy

@Suite("Identifiers and secrets")
struct IdentifierTests {
    @Test func tenantIdsAreTnPlusTwentyBase32Characters() {
        let ids = (0..<1000).map { _ in IDGenerator.tenantID().rawValue }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.hasPrefix("tn_"))
            #expect(id.count == 23)
            #expect(id.dropFirst(3).allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
        }
    }

    @Test func keyIdsAreKeyPlusTwentyFourBase32Characters() {
        let kids = (0..<1000).map { _ in IDGenerator.keyID() }
        #expect(Set(kids).count == kids.count)
        for kid in kids {
            #expect(kid.hasPrefix("key_"))
            #expect(kid.count == 28)
        }
    }

    @Test func idCharactersAreSpreadOverTheWholeAlphabet() {
        let characters = Set((0..<200).flatMap { _ in IDGenerator.randomString(length: 24) })
        #expect(characters.count == 32)
    }

    @Test func hs256SecretsAreAtLeast32RandomBytes() {
        #expect(SecretGenerator.hs256Secret().count == 32)
        #expect(SecretGenerator.hs256Secret(byteCount: 8).count == 32)
        #expect(SecretGenerator.hs256Secret(byteCount: 64).count == 64)
        #expect(SecretGenerator.hs256Secret() != SecretGenerator.hs256Secret())
        let text = SecretGenerator.hs256SecretBase64URL()
        #expect(text.count == 43)
        #expect(Base64URL.decode(text)?.count == 32)
    }

    @Test("base64url round-trips every length", arguments: 0..<40)
    func base64URLRoundTrips(_ length: Int) {
        let bytes = SecretGenerator.randomBytes(length)
        let text = Base64URL.encode(bytes)
        #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
        #expect(Base64URL.decode(text) == bytes)
    }

    @Test func base64URLRefusesOtherAlphabetsAndBadLengths() {
        #expect(Base64URL.decode("ab+/") == nil)
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("a b=") == nil)
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        // One codec for the project, strict: JWTs and secrets carry no padding (RFC 7515 §2).
        #expect(Base64URL.decode("AQ") == [1])
        #expect(Base64URL.decode("AQ==") == nil)
    }
}
