/// Splits text into lower-cased words (runs of letters and digits) for the stand-in
/// full-text operators. Not an analyzer: no stemming, no stop words.
enum TextTokens {
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Words of a string field, or of every string in an array field; nil for other kinds.
    static func words(of value: DataValue) -> [String]? {
        switch value {
        case .string(let text): return words(text)
        case .array(let elements):
            var all: [String] = []
            for case .string(let text) in elements { all.append(contentsOf: words(text)) }
            return all
        default: return nil
        }
    }
}
