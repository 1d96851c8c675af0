import Crypto
import Foundation
import Tenancy

/// Seals HS256 secrets at rest with ChaCha20-Poly1305 under a 32-byte master key.
///
/// Sealed format: one version byte (1), then ChaChaPoly's combined box (12-byte nonce,
/// ciphertext, 16-byte tag). The key's `kid` is authenticated as associated data, so a
/// ciphertext copied onto another key's row does not open.
public struct SecretBox: Sendable {
    /// Master keys are exactly this long.
    public static let masterKeyByteCount = 32
    static let formatVersion: UInt8 = 1

    private let key: SymmetricKey

    /// - Throws: `MetadataError.invalid` unless `masterKey` is 32 bytes.
    public init(masterKey: [UInt8]) throws(MetadataError) {
        guard masterKey.count == Self.masterKeyByteCount else {
            throw .invalid("the metadata master key must be \(Self.masterKeyByteCount) bytes (got \(masterKey.count))")
        }
        self.key = SymmetricKey(data: masterKey)
    }

    /// A master key given as base64url (or standard base64) text, as in configuration.
    public init(masterKeyBase64 text: String) throws(MetadataError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Base64URL.decode(trimmed) ?? Data(base64Encoded: trimmed).map({ [UInt8]($0) }) else {
            throw .invalid("the metadata master key is not base64")
        }
        try self.init(masterKey: bytes)
    }

    /// A fresh random master key (for `topgun dev`, which keeps it in its data directory).
    public static func generateMasterKey() -> [UInt8] {
        SecretGenerator.randomBytes(masterKeyByteCount)
    }

    /// Seals `secret` for the key `kid`.
    public func seal(_ secret: [UInt8], kid: String) throws(MetadataError) -> [UInt8] {
        do {
            let box = try ChaChaPoly.seal(secret, using: key, authenticating: Array(kid.utf8))
            return [Self.formatVersion] + Array(box.combined)
        } catch {
            throw .unavailable("cannot encrypt the secret of key \(kid): \(error)")
        }
    }

    /// Opens what `seal` produced for `kid`.
    /// - Throws: `MetadataError.unavailable` when it does not open (another master key, or a
    ///   damaged row): the store cannot serve that key until the right master key is configured.
    public func open(_ sealed: [UInt8], kid: String) throws(MetadataError) -> [UInt8] {
        guard sealed.first == Self.formatVersion else {
            throw .unavailable("the secret of key \(kid) has an unknown format")
        }
        do {
            let box = try ChaChaPoly.SealedBox(combined: sealed.dropFirst())
            return Array(try ChaChaPoly.open(box, using: key, authenticating: Array(kid.utf8)))
        } catch {
            throw .unavailable("the secret of key \(kid) cannot be decrypted: is this the master key it was stored with?")
        }
    }
}
