import HTTPEdge

/// The contract's problem for a request the HTTP/1 parser refused (`MalformedRequestResponder`
/// answers it before any route runs): `431 request-header-fields-too-large`,
/// `501 not-implemented`, or `400 validation-failed`.
enum MalformedRequestProblem {
    static func render(_ refusal: MalformedRequest) -> ProblemResponse {
        let kind: ProblemKind =
            switch refusal.kind {
            case .headerFieldsTooLarge: .headerFieldsTooLarge
            case .unknownMethod: .unknownMethod
            case .malformed: .validationFailed
            }
        // The request's own X-Request-Id was never parsed.
        let requestID = Endpoint.requestID(nil)
        let response = ProblemBody.response(APIError(kind, refusal.detail), requestID: requestID, path: nil)
        let headers = response.headers.map { ($0.0.rawName, $0.1) } + [("X-Request-Id", requestID)]
        return ProblemResponse(headers: headers, body: String(decoding: response.body, as: UTF8.self))
    }
}
