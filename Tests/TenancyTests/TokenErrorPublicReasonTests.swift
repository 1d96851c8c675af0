import Testing
@testable import Tenancy

/// What a refused client is told never repeats what its token carried, and fits a close frame.
@Suite struct TokenErrorPublicReasonTests {
    static let hostile = String(repeating: "k", count: 10_000)

    static let everyKind: [TokenError] = [
        .malformedToken("claims are not valid JSON of the expected shape"),
        .missingKeyId, .unknownKey(hostile), .revokedKey(hostile), .unsupportedAlgorithm(hostile),
        .algorithmMismatch(token: hostile, key: .hs256), .badSignature, .expired, .notYetValid, .missingExpiry, .missingSubject,
        .tenantMismatch(claimed: hostile, key: "tn_a"), .tenantSuspended("tn_a"), .tenantDeleted("tn_a"), .unknownTenant("tn_a"),
        .unusableKey(kid: hostile, reason: hostile), .keyStoreUnavailable(hostile),
    ]

    @Test func publicReasonsAreShortFixedTextsWithoutClientInput() {
        for error in Self.everyKind {
            let reason = error.publicReason
            #expect(!reason.isEmpty)
            #expect(reason.utf8.count <= 123, "\(reason) does not fit a close frame")
            #expect(!reason.contains("kkkk"), "\(reason) repeats the token")
            #expect(!reason.contains("DecodingError"), "\(reason) shows an internal type")
            #expect(error.reason.count > 0)  // the detail stays available for the log
        }
    }
}
