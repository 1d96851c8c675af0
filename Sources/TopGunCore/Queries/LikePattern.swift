/// A SQL `LIKE` pattern: `%` matches any run of characters (also none), `_` exactly one;
/// everything else is literal (there is no escape character, as in the client and the Rust
/// server). Matching is anchored at both ends and case-insensitive.
struct LikePattern: Sendable {
    private enum Token: Sendable, Equatable {
        case literal(Character)
        case anyOne
        case anyRun
    }

    private let tokens: [Token]

    init(_ pattern: String) {
        var tokens: [Token] = []
        for character in pattern.lowercased() {
            switch character {
            case "%": if tokens.last != .anyRun { tokens.append(.anyRun) }
            case "_": tokens.append(.anyOne)
            default: tokens.append(.literal(character))
            }
        }
        self.tokens = tokens
    }

    /// Wildcard matching with a single backtrack point per `%`: O(text × pattern) at worst,
    /// with no regex compilation and no way to blow up.
    func matches(_ text: String) -> Bool {
        let characters = Array(text.lowercased())
        var t = 0
        var p = 0
        var starP = -1
        var starT = 0
        while t < characters.count {
            if p < tokens.count {
                switch tokens[p] {
                case .anyRun:
                    starP = p
                    starT = t
                    p += 1
                    continue
                case .anyOne:
                    t += 1
                    p += 1
                    continue
                case .literal(let c) where c == characters[t]:
                    t += 1
                    p += 1
                    continue
                case .literal:
                    break
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1
            starT += 1
            t = starT
        }
        while p < tokens.count, tokens[p] == .anyRun { p += 1 }
        return p == tokens.count
    }
}
