import TopGunCore
import Foundation
import Metadata
import Tenancy

/// `/v1/tenants/{tenant_id}/keys`: generate an HS256 secret or register a public key; list;
/// get; revoke.
struct SigningKeyRoutes {
    static func create(_ call: APICall) async throws -> APIResponse {
        let tenantID = try call.tenantID()
        let request = try readCreate(try call.requireBody())
        let kid = IDGenerator.keyID()
        let material: SigningKey.Material
        var secretText: String?
        switch request.source {
        case .generate(let byteCount):
            let secret = SecretGenerator.randomBytes(byteCount)
            material = .hmacSecret(secret)
            secretText = Base64URLText.encode(secret)
        case .pem(let pem):
            material = .publicKeyPEM(pem)
        case .jwk(let json):
            material = .publicKeyPEM(json)
        }
        do {
            try SigningKey.validate(material, for: request.algorithm)
        } catch {
            let pointer = switch request.source {
            case .generate: "/secret_bytes"
            case .pem: "/public_key_pem"
            case .jwk: "/public_key_jwk"
            }
            throw APIError.validation(pointer: pointer, error.reason)
        }
        let key = SigningKey(
            kid: kid, tenant: tenantID, algorithm: request.algorithm, material: material, status: .active,
            createdAt: call.now, label: request.label, publicKeyJWK: { if case .jwk(let json) = request.source { json } else { nil } }())
        let secretForBody = secretText
        return try await call.write { transaction in
            _ = try await TenantRoutes.lockLiveTenant(tenantID, transaction, action: "given keys")
            let active = try await transaction.countActiveSigningKeys(tenant: tenantID)
            guard active < ControlPlaneLimits.maximumActiveKeysPerTenant else {
                throw APIError.conflict(
                    "tenant \(tenantID) already has \(active) active keys (at most \(ControlPlaneLimits.maximumActiveKeysPerTenant)); revoke one first")
            }
            try await transaction.insertSigningKey(key)
            try await transaction.appendAudit(call.auditEvent(
                "signing_key.create", tenant: tenantID, targetType: "signing_key", targetID: kid,
                details: ["algorithm": .string(request.algorithm.rawValue)]))
            try await transaction.publish(.signingKey(kid: kid, tenant: tenantID))
            return .json(.created, SigningKeyBody(key, secret: secretForBody), headers: [
                (.location, "/v1/tenants/\(tenantID.rawValue)/keys/\(kid)"),
                (.cacheControl, "no-store"),
            ])
        }
    }

    static func list(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["status", "limit", "cursor"])
        let tenantID = try call.tenantID()
        let status = try call.enumQuery("status", SigningKey.Status.self)
        let limit = try call.limit()
        let filters = "keys|\(tenantID)|\(status?.rawValue ?? "")"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        guard try await call.store.tenant(id: tenantID) != nil else { throw APIError.notFound("no tenant \(tenantID)") }
        let page = try await call.store.signingKeys(tenant: tenantID, status: status, after: after, limit: limit)
        return .json(.ok, ListBody(
            items: page.items.map { SigningKeyBody($0) },
            next_cursor: page.next.map { PageCursor.encode($0, filters: filters) }))
    }

    static func get(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let key = try await existingKey(call)
        return .json(.ok, SigningKeyBody(key))
    }

    static func revoke(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery([])
        let tenantID = try call.tenantID()
        let kid = call.pathParameter("kid")
        guard TextRules.isIdentifier(kid, prefix: "key_", count: 24) else { throw APIError.notFound("no key \(kid.prefix(64))") }
        return try await call.write { transaction in
            guard try await transaction.lockTenant(tenantID) != nil else { throw APIError.notFound("no tenant \(tenantID)") }
            guard let key = try await transaction.signingKey(kid: kid), key.tenant == tenantID else {
                throw APIError.notFound("tenant \(tenantID) has no key \(kid)")
            }
            guard key.status == .active else { return .json(.ok, SigningKeyBody(key)) }
            guard let revoked = try await transaction.revokeSigningKey(kid: kid, at: call.now) else {
                throw APIError.notFound("tenant \(tenantID) has no key \(kid)")
            }
            try await transaction.appendAudit(call.auditEvent(
                "signing_key.revoke", tenant: tenantID, targetType: "signing_key", targetID: kid))
            try await transaction.publish(.signingKey(kid: kid, tenant: tenantID))
            return .json(.ok, SigningKeyBody(revoked))
        }
    }

    private static func existingKey(_ call: APICall) async throws -> SigningKey {
        let tenantID = try call.tenantID()
        let kid = call.pathParameter("kid")
        guard TextRules.isIdentifier(kid, prefix: "key_", count: 24),
              let key = try await call.store.signingKey(kid: kid), key.tenant == tenantID
        else { throw APIError.notFound("tenant \(tenantID) has no key \(kid.prefix(64))") }
        return key
    }

    // MARK: The create body

    struct CreateRequest {
        enum Source {
            case generate(byteCount: Int)
            case pem(String)
            /// The JWK as compact JSON, its ignored `kid` removed.
            case jwk(String)
        }

        var algorithm: SigningAlgorithm
        var source: Source
        var label: String?
    }

    static func readCreate(_ body: JSONValue) throws(APIError) -> CreateRequest {
        var reader = try BodyReader(body)
        let algorithmText = reader.string("algorithm", required: true, check: TextRules.oneOf(SigningAlgorithm.allCases.map(\.rawValue)))
        let label = reader.string("label", check: TextRules.label(maximum: 100))
        guard let algorithmText, let algorithm = SigningAlgorithm(rawValue: algorithmText) else {
            // Read the rest too, so every problem is reported at once.
            _ = reader.value("secret_bytes")
            _ = reader.value("public_key_pem")
            _ = reader.value("public_key_jwk")
            try reader.finish()
            throw APIError.validation(pointer: "/algorithm", "is required")
        }
        var source: CreateRequest.Source?
        if algorithm == .hs256 {
            let bytes = reader.integer("secret_bytes", in: 32...1024) ?? 32
            source = .generate(byteCount: Int(bytes))
        } else {
            let pem = reader.string("public_key_pem", check: checkPEM)
            let jwkValue = reader.value("public_key_jwk")
            switch (pem, jwkValue) {
            case (let pem?, nil): source = .pem(pem)
            case (nil, let jwk?):
                switch readJWK(jwk, algorithm: algorithm, pointer: reader.path("public_key_jwk")) {
                case .success(let text): source = .jwk(text)
                case .failure(let error): reader.absorb(error)
                }
            case (.some, .some): reader.problem(nil, "give either public_key_pem or public_key_jwk, not both")
            case (nil, nil):
                if reader.problems.isEmpty { reader.problem(nil, "\(algorithm.rawValue) needs public_key_pem or public_key_jwk") }
            }
        }
        try reader.finish()
        guard let source else { throw APIError.validation(pointer: "", "no key material") }
        return CreateRequest(algorithm: algorithm, source: source, label: label)
    }

    private static func checkPEM(_ text: String) -> String? {
        guard (1...16384).contains(text.utf8.count) else { return "must be 1 to 16384 bytes" }
        let trimmed = text.drop(while: { $0.isWhitespace })
        guard trimmed.hasPrefix("-----BEGIN PUBLIC KEY-----") || trimmed.hasPrefix("-----BEGIN RSA PUBLIC KEY-----") else {
            return "must be a PEM public key (-----BEGIN PUBLIC KEY-----)"
        }
        return nil
    }

    /// Checks a JWK against the contract (members, lengths, private members refused) and
    /// returns it as compact JSON without its `kid`.
    static func readJWK(_ value: JSONValue, algorithm: SigningAlgorithm, pointer: String) -> Result<String, APIError> {
        let reader: BodyReader
        do { reader = try BodyReader(value, pointer: pointer) } catch { return .failure(error) }
        var jwk = reader
        let base64url: @Sendable (String) -> String? = { text in
            text.utf8.allSatisfy(AdminTokenValue.isBase64URLByte) ? nil : "must be unpadded base64url"
        }
        func sized(_ range: ClosedRange<Int>) -> @Sendable (String) -> String? {
            { text in range.contains(text.utf8.count) ? base64url(text) : "must be \(range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)") characters" }
        }
        var members = JSONObject()
        let expectedKty: String
        switch algorithm {
        case .rs256: expectedKty = "RSA"
        case .es256: expectedKty = "EC"
        case .edDSA: expectedKty = "OKP"
        case .hs256: return .failure(.validation(pointer: pointer, "HS256 keys are generated, not registered"))
        }
        if let kty = jwk.string("kty", required: true, check: TextRules.oneOf([expectedKty])) { members["kty"] = .string(kty) }
        switch algorithm {
        case .rs256:
            if let n = jwk.string("n", required: true, check: sized(342...2731)) { members["n"] = .string(n) }
            if let e = jwk.string("e", required: true, check: sized(1...16)) { members["e"] = .string(e) }
        case .es256:
            if let crv = jwk.string("crv", required: true, check: TextRules.oneOf(["P-256"])) { members["crv"] = .string(crv) }
            if let x = jwk.string("x", required: true, check: sized(43...43)) { members["x"] = .string(x) }
            if let y = jwk.string("y", required: true, check: sized(43...43)) { members["y"] = .string(y) }
        case .edDSA, .hs256:
            if let crv = jwk.string("crv", required: true, check: TextRules.oneOf(["Ed25519"])) { members["crv"] = .string(crv) }
            if let x = jwk.string("x", required: true, check: sized(43...43)) { members["x"] = .string(x) }
        }
        if let alg = jwk.string("alg", check: TextRules.oneOf([algorithm.rawValue])) { members["alg"] = .string(alg) }
        if let use = jwk.string("use", check: TextRules.oneOf(["sig"])) { members["use"] = .string(use) }
        _ = jwk.string("kid", check: { $0.utf8.count <= 256 ? nil : "must be at most 256 characters" })
        for privateMember in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] where jwk.value(privateMember) != nil {
            jwk.problem(privateMember, "private key members are refused; register the public key only")
        }
        do { try jwk.finish() } catch { return .failure(error) }
        return .success(JSONValue.object(members).canonicalText)
    }
}
