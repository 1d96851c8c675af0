import Foundation
import HTTPTypes

/// The kinds of error the API answers with: each has a stable `type` URI, a fixed title and
/// a status (the contract's **Errors** table).
public enum ProblemKind: String, Sendable, CaseIterable {
    case validationFailed = "validation-failed"
    case unauthorized
    case forbidden
    case notFound = "not-found"
    case methodNotAllowed = "method-not-allowed"
    case conflict
    case idempotencyKeyInUse = "idempotency-key-in-use"
    case preconditionFailed = "precondition-failed"
    case payloadTooLarge = "payload-too-large"
    case unsupportedMediaType = "unsupported-media-type"
    case idempotencyKeyReused = "idempotency-key-reused"
    case rateLimited = "rate-limited"
    case headerFieldsTooLarge = "request-header-fields-too-large"
    case internalError = "internal-error"
    /// A request method the server does not recognise at all (`FROB`): RFC 9110 §15.6.2 names
    /// its status 501; the problem type is the contract's (`openapi.yaml`). Not a feature gap.
    case unknownMethod = "not-implemented"
    case serviceUnavailable = "service-unavailable"

    public static let typeBase = "https://topgun.dev/problems/"

    public var typeURI: String { Self.typeBase + rawValue }

    public var title: String {
        switch self {
        case .validationFailed: "Validation failed"
        case .unauthorized: "Unauthorized"
        case .forbidden: "Forbidden"
        case .notFound: "Not found"
        case .methodNotAllowed: "Method not allowed"
        case .conflict: "Conflict"
        case .idempotencyKeyInUse: "Idempotency key in use"
        case .preconditionFailed: "Precondition failed"
        case .payloadTooLarge: "Payload too large"
        case .unsupportedMediaType: "Unsupported media type"
        case .idempotencyKeyReused: "Idempotency key reused"
        case .rateLimited: "Too many requests"
        case .headerFieldsTooLarge: "Request header fields too large"
        case .internalError: "Internal server error"
        case .unknownMethod: "Not implemented"
        case .serviceUnavailable: "Service unavailable"
        }
    }

    public var status: HTTPResponse.Status {
        switch self {
        case .validationFailed: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict, .idempotencyKeyInUse: .conflict
        case .preconditionFailed: .preconditionFailed
        case .payloadTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .idempotencyKeyReused: .unprocessableContent
        case .rateLimited: .tooManyRequests
        case .headerFieldsTooLarge: .requestHeaderFieldsTooLarge
        case .internalError: .internalServerError
        case .unknownMethod: .notImplemented
        case .serviceUnavailable: .serviceUnavailable
        }
    }
}

/// One problem in a request: where (a JSON Pointer into the body, or a parameter's name) and what.
public struct FieldProblem: Sendable, Equatable {
    public enum Location: Sendable, Equatable {
        case pointer(String)
        case parameter(String)
    }

    public var location: Location
    public var detail: String

    public init(pointer: String, _ detail: String) {
        self.location = .pointer(pointer)
        self.detail = detail
    }

    public init(parameter: String, _ detail: String) {
        self.location = .parameter(parameter)
        self.detail = detail
    }
}

/// An error a handler answers with, rendered as an RFC 9457 problem by `ProblemResponder`.
public struct APIError: Error, Sendable {
    public var kind: ProblemKind
    public var detail: String
    public var errors: [FieldProblem] = []
    public var missingScopes: [AdminScope] = []
    public var conflictingField: String?
    public var limitBytes: Int?
    public var retryAfter: Int?
    /// Headers the error's response carries besides the usual ones (`Allow`, `ETag`, ...).
    public var headers: [(HTTPField.Name, String)] = []

    public init(_ kind: ProblemKind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public static func validation(_ problems: [FieldProblem], detail: String? = nil) -> APIError {
        var error = APIError(
            .validationFailed,
            detail ?? (problems.count == 1 ? problems[0].detail : "\(problems.count) problems in the request"))
        error.errors = Array(problems.prefix(100))
        return error
    }

    public static func validation(parameter: String, _ detail: String) -> APIError {
        validation([FieldProblem(parameter: parameter, detail)])
    }

    public static func validation(pointer: String, _ detail: String) -> APIError {
        validation([FieldProblem(pointer: pointer, detail)])
    }

    public static func notFound(_ detail: String) -> APIError { APIError(.notFound, detail) }

    public static func conflict(_ detail: String, field: String? = nil) -> APIError {
        var error = APIError(.conflict, detail)
        error.conflictingField = field
        return error
    }
}
