import Testing
@testable import Tenancy

@Suite("ECMA-262 patterns")
struct ECMAPatternTests {
    private func matches(_ pattern: String, _ text: String) -> Bool? {
        guard let compiled = try? ECMAPattern(pattern) else { return nil }
        switch compiled.search(text) {
        case .match: return true
        case .noMatch: return false
        case .tooExpensive: return nil
        }
    }

    private func refusal(_ pattern: String) -> String? {
        do {
            _ = try ECMAPattern(pattern)
            return nil
        } catch {
            return error.message
        }
    }

    // (pattern, text, matches): each line is what a JavaScript `new RegExp(p, "u").test(t)` gives.
    @Test(arguments: [
        ("^[a-z][a-z0-9-]*$", "order-42", true),
        ("^[a-z][a-z0-9-]*$", "Order-42", false),
        ("b", "abc", true),  // unanchored
        ("^b", "abc", false),
        ("c$", "abc", true),
        ("^a$", "a\n", false),  // $ is the end of input, not before a final newline
        ("^.$", "\u{1F600}", true),  // . is one code point
        ("^.$", "e\u{301}", false),  // ... not one grapheme
        ("^..$", "e\u{301}", true),
        ("^.$", "\n", false),
        ("^.$", "\u{2028}", false),
        ("^\\d+$", "0123456789", true),
        ("^\\d$", "\u{0663}", false),  // Arabic-Indic digit: \d is ASCII
        ("^\\w+$", "abc_XYZ_09", true),
        ("^\\w$", "\u{E9}", false),
        ("^\\s+$", " \t\n\u{A0}\u{2003}\u{FEFF}", true),
        ("^\\S$", " ", false),
        ("^\\D\\W$", "a!", true),
        ("\\bfoo\\b", "a foo b", true),
        ("\\bfoo\\b", "afoo", false),
        ("\\Bfoo", "afoo", true),
        ("^(ab|cd)+$", "abcdab", true),
        ("^(ab|cd)+$", "abc", false),
        ("^(?:a|ab)c$", "abc", true),
        ("^a{2,3}$", "aa", true),
        ("^a{2,3}$", "aaaa", false),
        ("^a{2}$", "aa", true),
        ("^a{2,}$", "aaaaa", true),
        ("^(ab){2,3}$", "ababab", true),
        ("^(ab){2,3}$", "ab", false),
        ("^a*?b$", "aaab", true),
        ("^(a+?)b", "aab", true),
        ("^x(?=y)", "xy", true),
        ("^x(?=y)", "xz", false),
        ("^x(?!y)", "xz", true),
        ("^(?!.*admin).*$", "superadmin", false),
        ("^(?!.*admin).*$", "user", true),
        ("^[^abc]$", "d", true),
        ("^[^abc]$", "b", false),
        ("^[\\d-]+$", "12-34", true),
        ("^[a-]$", "-", true),
        ("^[-a]$", "-", true),
        ("^[\\-]$", "-", true),
        ("^[\\b]$", "\u{8}", true),
        ("^[[]$", "[", true),
        ("^[^\\D]$", "5", true),
        ("^[\\W\\d]$", "5", true),
        ("^[\\W\\d]$", "a", false),
        ("^\\u0041\\x42\\u{1F600}$", "AB\u{1F600}", true),
        ("^\\ud83d\\ude00$", "\u{1F600}", true),  // a surrogate pair in escapes is one code point
        ("^[\\u{1F600}-\\u{1F64F}]+$", "\u{1F600}\u{1F64F}", true),
        ("^\\cJ$", "\n", true),
        ("^\\0$", "\u{0}", true),
        ("^\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\/\\^\\$\\\\$", ".*+?()[]{}|/^$\\", true),
        ("^\\p{L}+$", "h\u{E9}llo\u{3042}", true),
        ("^\\p{Lu}$", "a", false),
        ("^\\P{L}$", "1", true),
        ("^\\p{gc=Nd}+$", "12\u{0663}", true),
        ("^\\p{General_Category=Letter}$", "x", true),
        ("^[\\p{L}\\d]+$", "a1\u{E9}", true),
        ("^\\p{Emoji_Presentation}$", "\u{1F600}", true),
        ("^(?<year>\\d{4})-(?<month>\\d{2})$", "2024-06", true),
        ("^(a*)*$", "aaaa", true),  // empty iterations end the loop
        ("^(a*)*b$", "aaaac", false),
        ("^(a|)+$", "aaa", true),
        ("^(?:a?)+?b$", "aab", true),
        ("", "anything", true),
        ("a|", "zzz", true),
        ("^$", "", true),
        ("x*", "", true),
        ("\u{E9}", "caf\u{E9}", true),
        ("\u{E9}", "cafe\u{301}", false),  // no normalization, as in JavaScript
    ])
    func matchesLikeJavaScript(pattern: String, text: String, expected: Bool) {
        #expect(matches(pattern, text) == expected, "\(pattern) on \(text.debugDescription)")
    }

    @Test(arguments: [
        ("(?<=a)b", "look-behind assertions are not supported"),
        ("(?<!a)b", "look-behind assertions are not supported"),
        ("(a)\\1", "back-references are not supported"),
        ("\\9", "back-references are not supported"),
        ("(?<n>a)\\k<n>", "back-references are not supported"),
        ("[", "unterminated character class"),
        ("(", "unterminated group"),
        ("a)", "unmatched ')'"),
        ("*a", "nothing to repeat"),
        ("a**", "nothing to repeat"),
        ("^*", "nothing to repeat"),
        ("(?=a)*", "nothing to repeat"),
        ("a{2,1}", "numbers out of order in {} quantifier"),
        ("a{", "incomplete quantifier"),
        ("a{1", "incomplete quantifier"),
        ("{", "nothing to repeat"),
        ("]", "lone ']'"),
        ("}", "lone '}'"),
        ("\\a", "invalid escape"),  // identity escapes of letters are Annex B, not `u` mode
        ("\\-", "invalid escape"),
        ("\\00", "invalid decimal escape"),
        ("\\c1", "invalid \\c escape"),
        ("\\x4", "invalid \\x escape"),
        ("\\u12", "invalid \\u escape"),
        ("\\u{110000}", "\\u{...} beyond U+10FFFF"),
        ("[z-a]", "range out of order in character class"),
        ("[\\d-z]", "invalid character class range"),
        ("[\\1]", "invalid escape in character class"),
        ("(?i)a", "invalid group"),
        ("(?<1a>x)", "invalid group name"),
        ("(?<n>a)(?<n>b)", "duplicate group name 'n'"),
        ("\\p{Script=Greek}", "Unicode property 'Script=Greek' is not supported"),
        ("\\p{Nope}", "Unicode property 'Nope' is not supported"),
        ("\\p{L", "invalid property escape"),
        ("\\", "\\ at end of pattern"),
        ("((ab){1000}){1000}", "the pattern is too large once its repetitions are expanded"),
    ])
    func refusesWhatECMAScriptOrTheContractRefuses(pattern: String, message: String) {
        #expect(refusal(pattern) == message, "\(pattern)")
    }

    @Test func deepGroupNestingIsRefused() {
        let deep = String(repeating: "(", count: 101) + "a" + String(repeating: ")", count: 101)
        #expect(refusal(deep) == "groups are nested more than 100 deep")
        let fine = String(repeating: "(", count: 100) + "a" + String(repeating: ")", count: 100)
        #expect(matches(fine, "a") == true)
    }

    @Test func catastrophicBacktrackingStopsAtTheStepBudget() throws {
        let pattern = try ECMAPattern("^(a+)+$")
        let hostile = String(repeating: "a", count: 40) + "!"
        #expect(pattern.search(hostile) == .tooExpensive)
        #expect(pattern.search(String(repeating: "a", count: 40)) == .match)
    }

    @Test func linearPatternsFinishOnLongStrings() throws {
        let long = String(repeating: "ab", count: 500_000)
        #expect(try ECMAPattern("^(ab)+$").search(long) == .match)
        #expect(try ECMAPattern("^[ab]*$").search(long) == .match)
        #expect(try ECMAPattern("^.*b$").search(long) == .match)
        #expect(try ECMAPattern("^[ab]*?$").search(long) == .match)
        #expect(try ECMAPattern("^[ab]*c").search(long) == .noMatch)
    }

    @Test func greedyAndLazyLoopsBacktrackOverMultiByteCharacters() throws {
        #expect(matches("^\u{E9}*\u{E9}x$", "\u{E9}\u{E9}\u{E9}x") == true)
        #expect(matches("^.*\u{1F600}.$", "a\u{1F600}\u{1F600}b") == true)
        #expect(matches("^.*?\u{1F600}b$", "\u{1F600}\u{1F600}b") == true)
        #expect(matches("^.{2,3}?$", "\u{1F600}\u{E9}\u{1F600}") == true)
        #expect(matches("^.{2,3}?$", "\u{1F600}\u{E9}\u{1F600}a") == false)
    }
}
