import Crypto
import Foundation
import Testing
@testable import Tenancy

/// A token's header and claims must be strict JSON: a member named twice (RFC 7515 §4 and RFC
/// 7519 §4 allow refusing it) is refused, in the header and in the claims alike, with a fixed
/// reason that repeats nothing of the token.
@Suite("TokenVerifier: strict header and claims")
struct TokenStrictJSONTests {
    /// An HS256 token with exactly this header and payload text, correctly signed.
    static func signed(header: String, payload: String, pair: KeyPair) throws -> String {
        guard case .hmac(let secret) = pair.privateKey else { throw TokenError.unusableKey(kid: "", reason: "HS256 only") }
        let head = Base64URL.encode(Array(header.utf8))
        let body = Base64URL.encode(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(head).\(body)".utf8), using: SymmetricKey(data: secret))
        return "\(head).\(body).\(Base64URL.encode(Array(mac)))"
    }

    static func claims(_ extra: String = "") -> String {
        #"{"sub":"alice","exp":\#(VerifierFixture.nowSeconds + 60)\#(extra)}"#
    }

    @Test func theHandmadeTokenWithoutRepeatsIsAccepted() async throws {
        let fixture = try await VerifierFixture()
        let token = try Self.signed(header: #"{"alg":"HS256","kid":"\#(fixture.key.kid)","typ":"JWT"}"#, payload: Self.claims(), pair: fixture.pair)
        #expect(try await fixture.verifier.verify(token).principal == "alice")
    }

    @Test("a header naming a member twice is refused, even with equal values", arguments: [
        #"{"alg":"HS256","kid":"KID","kid":"KID"}"#,
        #"{"alg":"HS256","kid":"key_other","kid":"KID"}"#,
        #"{"alg":"HS256","kid":"KID","kid":"key_other"}"#,
        #"{"alg":"HS256","alg":"HS256","kid":"KID"}"#,
        #"{"alg":"HS256","kid":"KID","typ":"JWT","typ":"JWT"}"#,
        #"{"alg":"HS256","kid":"KID","x5c":{"a":1,"a":1}}"#,
    ])
    func headerWithARepeatedMemberIsRefused(_ template: String) async throws {
        let fixture = try await VerifierFixture()
        let header = template.replacingOccurrences(of: "KID", with: fixture.key.kid)
        let token = try Self.signed(header: header, payload: Self.claims(), pair: fixture.pair)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == .malformedToken("header repeats a member name"))
    }

    @Test("claims naming a member twice are refused", arguments: [
        #","sub":"alice""#,
        #","sub":"mallory""#,
        #","exp":\#(VerifierFixture.nowSeconds + 60)"#,
        #","roles":["USER"],"roles":["ADMIN"]"#,
        #","profile":{"name":"a","name":"b"}"#,
    ])
    func claimsWithARepeatedMemberAreRefused(_ extra: String) async throws {
        let fixture = try await VerifierFixture()
        let token = try Self.signed(header: #"{"alg":"HS256","kid":"\#(fixture.key.kid)"}"#, payload: Self.claims(extra), pair: fixture.pair)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == .malformedToken("claims repeat a member name"))
    }

    @Test func theReasonRepeatsNothingOfTheToken() async throws {
        let fixture = try await VerifierFixture()
        let marker = "attacker-controlled-text"
        let header = #"{"alg":"HS256","kid":"\#(fixture.key.kid)","\#(marker)":1,"\#(marker)":2}"#
        let claims = Self.claims(#","\#(marker)":1,"\#(marker)":2"#)
        for (header, payload) in [(header, Self.claims()), (#"{"alg":"HS256","kid":"\#(fixture.key.kid)"}"#, claims)] {
            let token = try Self.signed(header: header, payload: payload, pair: fixture.pair)
            let error = try #require(await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) })
            #expect(!error.reason.contains(marker))
            #expect(!error.reason.contains(fixture.key.kid))
        }
    }

    @Test("header and claims that are not strict JSON are refused as malformed", arguments: [
        (#"{"alg":"HS256","kid":"KID"} x"#, TokenStrictJSONTests.claims()),
        (#"{"alg":"HS256","kid":"KID","n":1e400}"#, TokenStrictJSONTests.claims()),
        (#"{"alg":"HS256","kid":"KID"}"#, #"{"sub":"\ud800","exp":1}"#),
        (#"{"alg":"HS256","kid":"KID"}"#, TokenStrictJSONTests.claims() + " {}"),
    ])
    func notStrictJSONIsMalformed(_ header: String, _ payload: String) async throws {
        let fixture = try await VerifierFixture()
        let token = try Self.signed(header: header.replacingOccurrences(of: "KID", with: fixture.key.kid), payload: payload, pair: fixture.pair)
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        guard case .malformedToken = error else {
            Issue.record("expected malformedToken, got \(String(describing: error))")
            return
        }
    }

    @Test func invalidUTF8InTheClaimsIsMalformed() async throws {
        let fixture = try await VerifierFixture()
        guard case .hmac(let secret) = fixture.pair.privateKey else { return }
        let head = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(fixture.key.kid)"}"#.utf8))
        let body = Base64URL.encode(Array(#"{"sub":"a"#.utf8) + [0xff] + Array(#"","exp":\#(VerifierFixture.nowSeconds + 60)}"#.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(head).\(body)".utf8), using: SymmetricKey(data: secret))
        let token = "\(head).\(body).\(Base64URL.encode(Array(mac)))"
        let error = await tokenError { () async throws(TokenError) in try await fixture.verifier.verify(token) }
        #expect(error == .malformedToken("claims are not strict JSON"))
    }
}
