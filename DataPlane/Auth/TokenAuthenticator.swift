import Metadata
import Tenancy

/// The edge's `Authenticator`: verifies app JWTs against the tenants' signing keys.
public struct TokenAuthenticator: Authenticator {
    public let verifier: TokenVerifier

    public init(verifier: TokenVerifier) {
        self.verifier = verifier
    }

    public func authenticate(token: String, requestId: String) async -> Result<RequestContext, RefusedToken> {
        do {
            let verified = try await verifier.verify(token)
            return .success(verified.requestContext(requestId: requestId))
        } catch {
            return .failure(RefusedToken(reason: error.publicReason, detail: error.reason))
        }
    }

    public func metadataChanged(_ change: MetadataChange) async {
        switch change {
        case .signingKey(let kid, _): verifier.forget(kid: kid)
        case .tenant: break  // tenants are read on every verification
        case .quota, .schema: break  // not cached here
        case .resynchronize: verifier.forgetAll()
        }
    }
}
