import Foundation

/// Identifies one use of an `Idempotency-Key`: keys are scoped to the admin token (or
/// `bootstrap`) that sends them.
public struct IdempotencyKey: Sendable, Equatable, Hashable {
    public var scope: String
    public var key: String

    public init(scope: String, key: String) {
        self.scope = scope
        self.key = key
    }
}

/// The request an idempotency key was first used with: a later use must match it.
public struct IdempotentRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    /// SHA-256 of the request body's canonical JSON (or of the empty body).
    public var bodyHash: [UInt8]

    public init(method: String, path: String, bodyHash: [UInt8]) {
        self.method = method
        self.path = path
        self.bodyHash = bodyHash
    }
}

/// A stored response, replayed byte for byte. The store seals `body` at rest under its
/// master key (it may carry a one-time secret).
public struct StoredResponse: Sendable, Equatable {
    public var status: Int
    /// Headers that describe the result (`Content-Type`, `Location`, `ETag`, `Cache-Control`).
    public var headers: [StoredHeader]
    public var body: [UInt8]

    public init(status: Int, headers: [StoredHeader], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

public struct StoredHeader: Sendable, Equatable, Codable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// What claiming an idempotency key found.
public enum IdempotencyClaim: Sendable, Equatable {
    /// The key was free (or its earlier claim went stale): run the request, then complete or
    /// release the claim.
    case claimed
    /// Another request with this key is still running.
    case inProgress
    /// The key was used with this same request before: replay this.
    case completed(StoredResponse)
    /// The key was used with another method, path or body.
    case mismatch
}
