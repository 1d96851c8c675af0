import NIOCore
import NIOHTTP1

/// A request the HTTP/1 parser refused, with the answer it gets (RFC 9110 §15, RFC 6585 §5):
/// header fields (the request line counts) over the limit are `431`, a method the parser does
/// not know is `501`, anything else malformed is `400`.
public struct MalformedRequest: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The request line and header fields exceed `HTTPRequestLimits`.
        case headerFieldsTooLarge
        /// A method outside the parser's set (the IANA registry's methods); a known method a
        /// resource does not allow is the application's `405`, not this.
        case unknownMethod
        /// Any other framing or syntax error: a bad or repeated `Content-Length`, a byte not
        /// allowed in the request target, a broken request line or header.
        case malformed
    }

    public var kind: Kind
    /// What was wrong, for the problem's `detail`.
    public var detail: String

    public var status: HTTPResponseStatus {
        switch kind {
        case .headerFieldsTooLarge: .requestHeaderFieldsTooLarge
        // RFC 9110 §15.6.2: the answer to a method the server does not recognise.
        case .unknownMethod: .notImplemented
        case .malformed: .badRequest
        }
    }

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }

    /// The classification of a parser error; nil for errors that are not about the request's
    /// syntax (I/O, a closed channel).
    public init?(_ error: any Error, limits: HTTPRequestLimits) {
        guard let error = error as? HTTPParserError else { return nil }
        switch error {
        case .headerOverflow:
            self.init(kind: .headerFieldsTooLarge, detail: "the request line and header fields are limited to \(limits.maxHeaderBytes) bytes and \(limits.maxHeaderFields) fields")
        case .invalidMethod:
            self.init(kind: .unknownMethod, detail: "the request method is not one this server implements")
        case .invalidContentLength, .unexpectedContentLength:
            self.init(kind: .malformed, detail: "Content-Length is not a valid number, or is given more than once")
        case .invalidURL:
            self.init(kind: .malformed, detail: "the request target is not a valid URI")
        case .invalidHeaderToken:
            self.init(kind: .malformed, detail: "a header field is malformed")
        case .invalidVersion:
            self.init(kind: .malformed, detail: "the HTTP version is not 1.0 or 1.1")
        default:
            self.init(kind: .malformed, detail: "the request is not valid HTTP/1.1 (\(error))")
        }
    }
}

/// The limits of a request's head on both planes' HTTP ports. The parser counts the request
/// line (so the path) toward the same budget as the header fields, so a 100 KB path is a
/// `431` like a 100 KB header.
public struct HTTPRequestLimits: Sendable, Equatable {
    /// The request line and all header fields together, and any single one of them.
    public var maxHeaderBytes: Int
    /// How many header fields a request may have.
    public var maxHeaderFields: Int

    /// 80 KiB (NIO's default, ample for a JWT in `Authorization`) and 1,000 fields.
    public static let standard = HTTPRequestLimits(maxHeaderBytes: 80 * 1024, maxHeaderFields: 1000)

    public init(maxHeaderBytes: Int, maxHeaderFields: Int) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderFields = maxHeaderFields
    }
}
