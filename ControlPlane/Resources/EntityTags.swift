import Foundation
import HTTPTypes

/// Strong entity tags derived from version numbers, and `If-Match` / `If-None-Match`
/// evaluation (RFC 9110 §13.1).
enum EntityTag {
    static func make(_ version: some BinaryInteger) -> String { "\"\(version)\"" }

    /// Whether `If-Match` (absent, `*` or a list of tags) allows changing a resource whose
    /// current tag is `current` (nil: the resource does not exist). Weak tags never match.
    /// Refuses an `If-Match` outside the contract's bounds (empty, or over 1024 characters).
    static func checkIfMatch(_ header: String?) throws(APIError) {
        guard let header else { return }
        guard !header.trimmingCharacters(in: .whitespaces).isEmpty, header.utf8.count <= 1024 else {
            throw .validation(parameter: "If-Match", "must be * or a list of entity tags, at most 1024 characters")
        }
    }

    static func ifMatchAllows(_ header: String?, current: String?) -> Bool {
        guard let header else { return true }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return current != nil }
        guard let current else { return false }
        // A list of tags; anything that is not a strong tag (a weak one, or text that is not a
        // quoted tag at all) matches nothing, so a garbled header fails safe with a 412.
        for part in trimmed.split(separator: ",") {
            let tag = part.trimmingCharacters(in: .whitespaces)
            if tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\""), tag == current { return true }
        }
        return false
    }

    static func preconditionFailed(current: String?) -> APIError {
        var error = APIError(.preconditionFailed, current.map { "If-Match does not name the current version \($0)" } ?? "the resource does not exist")
        if let current { error.headers.append((.eTag, current)) }
        return error
    }
}
