/// A `regex` predicate pattern compiled once. An invalid pattern compiles to nothing and
/// then matches nothing, instead of failing the query.
///
/// `@unchecked Sendable`: `Regex` is not marked Sendable, but a regex built from a pattern
/// string has no user code in it and its lazily compiled program is published atomically
/// (swift-experimental-string-processing #474/#610). We also force that compilation here,
/// before the box is shared, so concurrent readers only ever read.
final class CompiledRegex: @unchecked Sendable {
    let pattern: String
    private let regex: Regex<AnyRegexOutput>?

    init(pattern: String) {
        self.pattern = pattern
        let regex = try? Regex(pattern)
        if let regex { _ = try? regex.firstMatch(in: "") }
        self.regex = regex
    }

    /// Unanchored search, like JavaScript's `RegExp.test` and Rust's `is_match`.
    func matches(_ text: String) -> Bool {
        guard let regex else { return false }
        return (try? regex.firstMatch(in: text)) != nil
    }
}
