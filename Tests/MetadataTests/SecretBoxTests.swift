import Foundation
@testable import Metadata
import Tenancy
import Testing

@Suite("SecretBox")
struct SecretBoxTests {
    @Test func sealedSecretOpensOnlyForItsKidAndMasterKey() throws {
        let box = try SecretBox(masterKey: TestMasterKey.bytes)
        let secret = SecretGenerator.hs256Secret()
        let sealed = try box.seal(secret, kid: "key_a")
        #expect(sealed.count == 1 + 12 + 32 + 16)
        #expect(try box.open(sealed, kid: "key_a") == secret)
        #expect(throws: MetadataError.self) { try box.open(sealed, kid: "key_b") }
        #expect(throws: MetadataError.self) { try SecretBox(masterKey: TestMasterKey.other).open(sealed, kid: "key_a") }
        var tampered = sealed
        tampered[20] ^= 1
        #expect(throws: MetadataError.self) { try box.open(tampered, kid: "key_a") }
        #expect(throws: MetadataError.self) { try box.open([], kid: "key_a") }
        #expect(throws: MetadataError.self) { try box.open([1, 2, 3], kid: "key_a") }
    }

    @Test func sealingTwiceGivesDifferentCiphertexts() throws {
        let box = try SecretBox(masterKey: TestMasterKey.bytes)
        let secret = SecretGenerator.hs256Secret()
        #expect(try box.seal(secret, kid: "key_a") != box.seal(secret, kid: "key_a"))
    }

    @Test func masterKeyMustBe32Bytes() throws {
        #expect(throws: MetadataError.invalid("the metadata master key must be 32 bytes (got 31)")) {
            try SecretBox(masterKey: Array(repeating: 0, count: 31))
        }
        let text = Base64URL.encode(SecretBox.generateMasterKey())
        _ = try SecretBox(masterKeyBase64: text)
        _ = try SecretBox(masterKeyBase64: Data(TestMasterKey.bytes).base64EncodedString())
        #expect(throws: MetadataError.self) { try SecretBox(masterKeyBase64: "not base64!") }
    }
}
