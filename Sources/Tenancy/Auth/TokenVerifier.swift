import Foundation
import JWTKit
import Synchronization
import TopGunCore

/// Verifies app JWTs against tenant signing keys (design.md §3, protocol.md §10.1).
///
/// Rules, in order: the header and the claims are strict JSON (no member named twice, valid
/// UTF-8; see `JSONReader`); the header's `kid` is required and names a key through the
/// resolver; the key must be active; the header's `alg` must be one of HS256, RS256, ES256,
/// EdDSA and equal to the key's algorithm (so an RS256 key's PEM can never be used as an HMAC
/// secret); the signature must verify; `exp` is required, `nbf` and `iat` are honoured, all with
/// `clockSkew`; `sub` is required; an optional `tenant` claim must equal the key's tenant; the
/// tenant must exist and be active.
///
/// Parsed keys are cached per `kid` (parsing an RSA key costs far more than a verification);
/// the key's status and tenant are asked of the resolver on every call, so a resolver that
/// caches decides how fresh those are. Call `forget(kid:)` when a key changes.
public struct TokenVerifier: Sendable {
    public let resolver: any SigningKeyResolver
    /// How far clocks may disagree, in seconds (default 30).
    public let clockSkew: TimeInterval
    private let now: @Sendable () -> Date
    let cache: VerificationKeyCache  // internal for tests

    /// Tokens longer than this are refused unread (a JWT of ours is a few hundred bytes).
    public static let maximumTokenBytes = 16 * 1024

    /// - Parameters:
    ///   - resolver: where keys and tenants are looked up (the metadata store, or a cache over it).
    ///   - clockSkew: tolerance for `exp`, `nbf` and `iat`, in seconds.
    ///   - now: the clock; injectable for tests.
    public init(
        resolver: any SigningKeyResolver,
        clockSkew: TimeInterval = 30,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.resolver = resolver
        self.clockSkew = clockSkew
        self.now = now
        self.cache = VerificationKeyCache()
    }

    /// Drops the cached parsed key for `kid` (call it when the key is revoked or replaced).
    public func forget(kid: String) {
        cache.remove(kid: kid)
    }

    /// Drops every cached key (e.g. after the metadata change stream resynchronised).
    public func forgetAll() {
        cache.removeAll()
    }

    /// Verifies `token` and returns what it establishes, or throws why not.
    public func verify(_ token: String) async throws(TokenError) -> VerifiedToken {
        let header = try Self.decodeHeader(token)
        guard let kid = header.kid, !kid.isEmpty else { throw .missingKeyId }
        guard let alg = header.alg else { throw .malformedToken("header has no alg") }
        guard let tokenAlgorithm = SigningAlgorithm(rawValue: alg) else { throw .unsupportedAlgorithm(alg) }

        let key = try await lookUpKey(kid: kid)
        guard key.status == .active else { throw .revokedKey(kid) }
        guard tokenAlgorithm == key.algorithm else {
            throw .algorithmMismatch(token: alg, key: key.algorithm)
        }

        let collection = try await collection(for: key)
        let claims: ReceivedClaims
        do {
            claims = try await collection.verify(token, as: ReceivedClaims.self)
        } catch let error as JWTError where error.errorType == .malformedToken {
            // jwt-kit's reason may quote the claims: a fixed text instead (the client is told it).
            throw .malformedToken("claims are not valid JSON of the expected shape")
        } catch {
            // signatureVerificationFailed, or a signature that is not even well-formed for the
            // algorithm (wrong length, bad base64): either way it does not verify.
            throw .badSignature
        }

        let verified = try check(claims, key: key)
        try await checkTenant(key.tenant)
        return verified
    }

    // MARK: Steps

    private struct Header {
        var alg: String?
        var kid: String?
    }

    /// The header of a compact JWS whose header and claims are both strict JSON.
    private static func decodeHeader(_ token: String) throws(TokenError) -> Header {
        guard token.utf8.count <= maximumTokenBytes else {
            throw .malformedToken("longer than \(maximumTokenBytes) bytes")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .malformedToken("not three dot-separated base64url parts")
        }
        guard let headerBytes = Base64URL.decode(parts[0]) else {
            throw .malformedToken("header is not base64url")
        }
        let header = try strictJSON(headerBytes, repeated: "header repeats a member name", otherwise: "header is not strict JSON")
        guard let claimBytes = Base64URL.decode(parts[1]) else {
            throw .malformedToken("claims are not base64url")
        }
        // The claims are decoded by jwt-kit once the signature holds; read here only to refuse
        // what is not strict JSON before any key is looked up.
        _ = try strictJSON(claimBytes, repeated: "claims repeat a member name", otherwise: "claims are not strict JSON")
        let notAHeader = TokenError.malformedToken("header is not a JSON object with string alg and kid")
        guard case .object(let members) = header else { throw notAHeader }
        func text(_ name: String) throws(TokenError) -> String? {
            switch members[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            default: throw notAHeader
            }
        }
        return Header(alg: try text("alg"), kid: try text("kid"))
    }

    /// RFC 7515 §4 and RFC 7519 §4 let a parser refuse a header or claims set that names a
    /// member twice, or keep the last one; we refuse, so that no two readers of one token (ours,
    /// jwt-kit's, a proxy's) can disagree on its `kid`, `sub` or `exp`. The reasons are fixed
    /// texts: nothing of the token is repeated back.
    private static func strictJSON(_ bytes: [UInt8], repeated: String, otherwise: String) throws(TokenError) -> JSONValue {
        do {
            return try JSONReader().read(bytes)
        } catch {
            if case .repeatedMember = error.kind { throw .malformedToken(repeated) }
            throw .malformedToken(otherwise)
        }
    }

    private func lookUpKey(kid: String) async throws(TokenError) -> SigningKey {
        let found: SigningKey?
        do {
            found = try await resolver.signingKey(kid: kid)
        } catch {
            throw .keyStoreUnavailable(String(describing: error))
        }
        guard let found else { throw .unknownKey(kid) }
        return found
    }

    private func collection(for key: SigningKey) async throws(TokenError) -> JWTKeyCollection {
        if let cached = cache.collection(for: key) { return cached }
        let parsed: VerificationKey
        do {
            parsed = try VerificationKey(algorithm: key.algorithm, material: key.material)
        } catch {
            throw .unusableKey(kid: key.kid, reason: error.reason)
        }
        let collection = await parsed.makeCollection(kid: key.kid)
        cache.store(collection, for: key)
        return collection
    }

    private func check(_ claims: ReceivedClaims, key: SigningKey) throws(TokenError) -> VerifiedToken {
        let now = self.now().timeIntervalSince1970
        guard let exp = claims.exp else { throw .missingExpiry }
        guard exp.isFinite else { throw .malformedToken("exp is not a number") }
        // RFC 7519: the token must not be accepted on or after exp.
        guard now < exp + clockSkew else { throw .expired }
        if let nbf = claims.nbf, !(nbf <= now + clockSkew) { throw .notYetValid }
        if let iat = claims.iat, !(iat <= now + clockSkew) { throw .notYetValid }
        guard let subject = claims.sub, !subject.isEmpty else { throw .missingSubject }
        if let claimed = claims.tenant, claimed != key.tenant.rawValue {
            throw .tenantMismatch(claimed: claimed, key: key.tenant)
        }
        return VerifiedToken(
            tenant: key.tenant,
            principal: subject,
            roles: claims.roles ?? [],
            keyId: key.kid,
            expiresAt: Date(timeIntervalSince1970: exp),
            issuedAt: claims.iat.map { Date(timeIntervalSince1970: $0) }
        )
    }

    private func checkTenant(_ id: TenantID) async throws(TokenError) {
        let tenant: Tenant?
        do {
            tenant = try await resolver.tenant(id: id)
        } catch {
            throw .keyStoreUnavailable(String(describing: error))
        }
        guard let tenant else { throw .unknownTenant(id) }
        switch tenant.status {
        case .active: return
        case .suspended: throw .tenantSuspended(id)
        case .deleted: throw .tenantDeleted(id)
        }
    }
}

/// Parsed keys by `kid`. An entry is used only while the resolver still returns the same
/// algorithm and material, so a replaced key is re-parsed even without `forget(kid:)`.
final class VerificationKeyCache: Sendable {
    private struct Entry {
        var algorithm: SigningAlgorithm
        var material: SigningKey.Material
        var collection: JWTKeyCollection
    }

    /// Bounds memory if something keeps presenting many distinct valid keys.
    static let capacity = 10_000

    private let entries = Mutex<[String: Entry]>([:])

    func collection(for key: SigningKey) -> JWTKeyCollection? {
        entries.withLock { entries in
            guard let entry = entries[key.kid], entry.algorithm == key.algorithm, entry.material == key.material else {
                return nil
            }
            return entry.collection
        }
    }

    func store(_ collection: JWTKeyCollection, for key: SigningKey) {
        entries.withLock { entries in
            if entries.count >= Self.capacity, entries[key.kid] == nil { entries.removeAll(keepingCapacity: true) }
            entries[key.kid] = Entry(algorithm: key.algorithm, material: key.material, collection: collection)
        }
    }

    func remove(kid: String) {
        _ = entries.withLock { $0.removeValue(forKey: kid) }
    }

    func removeAll() {
        entries.withLock { $0.removeAll() }
    }
}
