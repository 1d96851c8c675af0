import Crypto
import Foundation
import JWTKit
import TopGunCore

/// Why stored key material cannot be used for an algorithm.
public struct KeyMaterialError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension SigningKey {
    /// Checks that `material` can verify tokens signed with `algorithm`: HS256 needs a secret
    /// of 32 to 1024 bytes; RS256 a PEM (SubjectPublicKeyInfo or PKCS#1) or JWK RSA public key of
    /// at least 2048 bits; ES256 a P-256 public key; EdDSA an Ed25519 public key. Stores call it
    /// before saving a key, so a bad key is refused when registered, not at the first login.
    public static func validate(_ material: Material, for algorithm: SigningAlgorithm) throws(KeyMaterialError) {
        _ = try VerificationKey(algorithm: algorithm, material: material)
    }
}

/// Key material parsed into the jwt-kit key type for its algorithm.
enum VerificationKey: Sendable {
    case hmac([UInt8])
    case rsa(JWTKit.Insecure.RSA.PublicKey)
    case es256(ES256PublicKey)
    case ed25519(EdDSA.PublicKey)

    static let maximumHMACSecretBytes = 1024

    init(algorithm: SigningAlgorithm, material: SigningKey.Material) throws(KeyMaterialError) {
        switch (algorithm, material) {
        case (.hs256, .hmacSecret(let secret)):
            // jwt-kit asserts (SIGILL in debug builds) on HMAC keys shorter than the digest:
            // refuse them here, before the bytes get there.
            guard secret.count >= SecretGenerator.minimumHS256SecretBytes else {
                throw KeyMaterialError("HS256 secret must be at least \(SecretGenerator.minimumHS256SecretBytes) bytes (got \(secret.count))")
            }
            guard secret.count <= Self.maximumHMACSecretBytes else {
                throw KeyMaterialError("HS256 secret must be at most \(Self.maximumHMACSecretBytes) bytes (got \(secret.count))")
            }
            self = .hmac(secret)
        case (.hs256, .publicKeyPEM):
            throw KeyMaterialError("HS256 needs a shared secret, not a public key")
        case (_, .hmacSecret):
            throw KeyMaterialError("\(algorithm.rawValue) needs a public key (PEM or JWK), not a shared secret")
        case (_, .publicKeyPEM(let text)):
            self = try Self.publicKey(algorithm: algorithm, text: text)
        }
    }

    /// Adds the key to a fresh collection under `kid`: one collection per key, so a token can
    /// only ever be checked against the key its own `kid` names.
    func makeCollection(kid: String) async -> JWTKeyCollection {
        let collection = JWTKeyCollection()
        let identifier = JWKIdentifier(string: kid)
        switch self {
        case .hmac(let secret):
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: identifier)
        case .rsa(let key):
            await collection.add(rsa: key, digestAlgorithm: .sha256, kid: identifier)
        case .es256(let key):
            await collection.add(ecdsa: key, kid: identifier)
        case .ed25519(let key):
            await collection.add(eddsa: key, kid: identifier)
        }
        return collection
    }

    // MARK: Public keys

    private static let maximumPublicKeyTextBytes = 16 * 1024

    private static func publicKey(algorithm: SigningAlgorithm, text raw: String) throws(KeyMaterialError) -> VerificationKey {
        guard raw.utf8.count <= maximumPublicKeyTextBytes else {
            throw KeyMaterialError("public key text is longer than \(maximumPublicKeyTextBytes) bytes")
        }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{") {
            return try jwk(algorithm: algorithm, json: text)
        }
        guard text.hasPrefix("-----BEGIN") else {
            throw KeyMaterialError("public key must be PEM (-----BEGIN PUBLIC KEY-----) or a JWK JSON object")
        }
        // Keys pasted through environment variables often carry literal "\n" (as the Rust server accepts).
        let pem = text.contains("\n") ? text : text.replacingOccurrences(of: "\\n", with: "\n")
        if pem.contains("PRIVATE KEY") {
            throw KeyMaterialError("this is a private key; register the public key only")
        }
        do {
            switch algorithm {
            case .rs256: return .rsa(try JWTKit.Insecure.RSA.PublicKey(pem: pem))
            case .es256: return .es256(try ES256PublicKey(pem: pem))
            case .edDSA: return .ed25519(try EdDSA.PublicKey(pem: pem))
            case .hs256: throw KeyMaterialError("HS256 needs a shared secret, not a public key")
            }
        } catch let error as KeyMaterialError {
            throw error
        } catch {
            throw KeyMaterialError("not a valid \(algorithm.rawValue) public key PEM (\(Self.describe(error)))")
        }
    }

    /// The JWK members we read (RFC 7517/7518/8037). A JWK carrying private members is refused.
    private struct JWKFields {
        var kty: String?
        var crv: String?
        var alg: String?
        var n: String?
        var e: String?
        var x: String?
        var y: String?
        var d: String?
    }

    private static func jwk(algorithm: SigningAlgorithm, json: String) throws(KeyMaterialError) -> VerificationKey {
        let invalid = KeyMaterialError("not a valid JWK JSON object")
        guard case .object(let members)? = try? JSONReader().read(json) else { throw invalid }
        func text(_ name: String) throws(KeyMaterialError) -> String? {
            switch members[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw invalid
            }
        }
        let fields = JWKFields(
            kty: try text("kty"), crv: try text("crv"), alg: try text("alg"), n: try text("n"), e: try text("e"), x: try text("x"), y: try text("y"),
            d: try text("d"))
        if fields.d != nil {
            throw KeyMaterialError("this JWK holds a private key; register the public key only")
        }
        if let alg = fields.alg, alg != algorithm.rawValue {
            throw KeyMaterialError("JWK alg \(alg) does not match \(algorithm.rawValue)")
        }
        do {
            switch algorithm {
            case .rs256:
                guard fields.kty == "RSA", let n = fields.n, let e = fields.e else {
                    throw KeyMaterialError("RS256 JWK needs kty RSA with n and e")
                }
                return .rsa(try JWTKit.Insecure.RSA.PublicKey(modulus: n, exponent: e))
            case .es256:
                guard fields.kty == "EC", fields.crv == "P-256", let x = fields.x, let y = fields.y else {
                    throw KeyMaterialError("ES256 JWK needs kty EC, crv P-256, x and y")
                }
                return .es256(try ES256PublicKey(parameters: (x: x, y: y)))
            case .edDSA:
                guard fields.kty == "OKP", fields.crv == "Ed25519", let x = fields.x else {
                    throw KeyMaterialError("EdDSA JWK needs kty OKP, crv Ed25519 and x")
                }
                return .ed25519(try EdDSA.PublicKey(x: x, curve: .ed25519))
            case .hs256:
                throw KeyMaterialError("HS256 needs a shared secret, not a public key")
            }
        } catch let error as KeyMaterialError {
            throw error
        } catch {
            throw KeyMaterialError("not a valid \(algorithm.rawValue) JWK (\(Self.describe(error)))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let jwtError = error as? JWTError { return jwtError.reason ?? jwtError.errorType.description }
        return String(describing: error)
    }
}
