import Crypto
import Foundation
import Metadata

/// Resolves `Authorization: Bearer <token>` into an `AdminCaller`: the bootstrap token from
/// configuration, or a stored admin token looked up by its SHA-256. App JWTs are refused
/// whatever key signed them: operators and apps never share credentials.
public actor AdminAuthenticator {
    private let store: any ControlPlaneStore
    /// SHA-256 of the bootstrap token, compared in constant time.
    private let bootstrapHash: [UInt8]?
    /// When each token's `last_used_at` was last written, so it is written at most once a minute.
    private var lastTouched: [String: Date] = [:]
    private let touchInterval: TimeInterval = 60

    public init(store: any ControlPlaneStore, bootstrapToken: String?) {
        self.store = store
        self.bootstrapHash = bootstrapToken.map(AdminTokenValue.hash)
    }

    /// The caller, or an `unauthorized` error saying why not.
    public func authenticate(authorization: String?, now: Date) async throws -> AdminCaller {
        guard let authorization else { throw Self.refusal("an admin token is required (Authorization: Bearer <token>)", tokenSent: false) }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw Self.refusal("the Authorization header must be 'Bearer <admin token>'", tokenSent: false)
        }
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty, value.utf8.count <= 512 else { throw Self.refusal("the admin token is not valid", tokenSent: true) }
        let hash = AdminTokenValue.hash(value)
        if let bootstrapHash, Self.constantTimeEqual(hash, bootstrapHash) {
            return AdminCaller(actor: AdminCaller.bootstrapActor, scopes: Set(AdminScope.allCases))
        }
        if value.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            throw Self.refusal("app JWTs are not accepted by the control plane; use an admin token", tokenSent: true)
        }
        guard AdminTokenValue.isWellFormed(value) else { throw Self.refusal("the admin token is not valid", tokenSent: true) }
        // A store error propagates as is: the request pipeline maps it (503 when unreachable).
        guard let record = try await store.adminToken(valueHash: hash) else { throw Self.refusal("the admin token is not valid", tokenSent: true) }
        switch record.status(at: now) {
        case .revoked: throw Self.refusal("the admin token was revoked", tokenSent: true)
        case .expired: throw Self.refusal("the admin token has expired", tokenSent: true)
        case .active: break
        }
        if lastTouched[record.id].map({ now.timeIntervalSince($0) >= touchInterval }) ?? true {
            lastTouched[record.id] = now
            // Best effort: a failed write of the last-use time must not refuse the request.
            try? await store.touchAdminToken(id: record.id, at: now)
        }
        return AdminCaller(actor: record.id, scopes: Set(record.scopes.compactMap(AdminScope.init(rawValue:))))
    }

    static func refusal(_ detail: String, tokenSent: Bool) -> APIError {
        var error = APIError(.unauthorized, detail)
        let challenge = tokenSent
            ? "Bearer realm=\"topgun-control-plane\", error=\"invalid_token\""
            : "Bearer realm=\"topgun-control-plane\""
        error.headers.append((.wwwAuthenticate, challenge))
        return error
    }

    private static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
