/// The syntax tree of an ECMA-262 pattern (the `u`-flag grammar, no flags). Captures are
/// not kept: without back-references nothing can observe them.
indirect enum PatternNode: Sendable {
    case empty
    case char(UInt32)
    /// `.`: any code point but a line terminator.
    case any
    case set(CodePointSet)
    case inputStart
    case inputEnd
    case wordBoundary(negated: Bool)
    case lookahead(PatternNode, negated: Bool)
    case concat([PatternNode])
    case alternation([PatternNode])
    /// `max == nil` is unbounded.
    case repetition(PatternNode, min: Int, max: Int?, greedy: Bool)

    /// Whether it can succeed without consuming input (needs the empty-iteration check of
    /// ECMA-262 RepeatMatcher when repeated).
    var canMatchEmpty: Bool {
        switch self {
        case .empty, .inputStart, .inputEnd, .wordBoundary, .lookahead: true
        case .char, .any, .set: false
        case .concat(let nodes): nodes.allSatisfy(\.canMatchEmpty)
        case .alternation(let nodes): nodes.contains(where: \.canMatchEmpty)
        case .repetition(let node, let min, _, _): min == 0 || node.canMatchEmpty
        }
    }

    /// Whether every match must start at the beginning of the input (`^...`), so a search
    /// need not try later start positions.
    var isAnchoredAtStart: Bool {
        switch self {
        case .inputStart: true
        case .concat(let nodes): nodes.first?.isAnchoredAtStart ?? false
        case .alternation(let nodes): nodes.allSatisfy(\.isAnchoredAtStart)
        default: false
        }
    }
}

/// A pattern refused when the schema is put.
struct PatternSyntaxError: Error, Equatable {
    var message: String
}

/// Reads ECMA-262 `u`-mode pattern syntax. Refuses look-behind and back-references (the
/// contract excludes them) and everything ECMA-262 itself refuses in `u` mode, such as a
/// lone `{`, `]` or `}`, `\0` followed by a digit, or an identity escape of a letter.
struct PatternParser {
    /// Groups nested deeper are refused: parsing and matching recurse per level.
    static let maxNesting = 100

    private let source: [UInt32]
    private var index = 0
    private var nesting = 0
    private var groupNames: Set<String> = []

    private init(source: [UInt32]) { self.source = source }

    static func parse(_ pattern: String) throws(PatternSyntaxError) -> PatternNode {
        var parser = PatternParser(source: pattern.unicodeScalars.map(\.value))
        let node = try parser.parseDisjunction()
        if parser.index < parser.source.count {
            // parseDisjunction stops only at ')' at top level.
            throw PatternSyntaxError(message: "unmatched ')'")
        }
        return node
    }

    private var atEnd: Bool { index >= source.count }
    private func peek(_ offset: Int = 0) -> UInt32? {
        index + offset < source.count ? source[index + offset] : nil
    }
    private func peekIs(_ char: Character, _ offset: Int = 0) -> Bool {
        guard let value = peek(offset), let ascii = char.asciiValue else { return false }
        return value == UInt32(ascii)
    }

    private func error(_ message: String) -> PatternSyntaxError { PatternSyntaxError(message: message) }

    // MARK: Structure

    private mutating func parseDisjunction() throws(PatternSyntaxError) -> PatternNode {
        var alternatives = [try parseAlternative()]
        while peekIs("|") {
            index += 1
            alternatives.append(try parseAlternative())
        }
        return alternatives.count == 1 ? alternatives[0] : .alternation(alternatives)
    }

    private mutating func parseAlternative() throws(PatternSyntaxError) -> PatternNode {
        var terms: [PatternNode] = []
        while !atEnd, !peekIs("|"), !peekIs(")") {
            terms.append(try parseTerm())
        }
        switch terms.count {
        case 0: return .empty
        case 1: return terms[0]
        default: return .concat(terms)
        }
    }

    private mutating func parseTerm() throws(PatternSyntaxError) -> PatternNode {
        guard let c = peek() else { throw error("unexpected end of pattern") }
        switch c {
        case ascii("^"):
            index += 1
            try refuseQuantifier()
            return .inputStart
        case ascii("$"):
            index += 1
            try refuseQuantifier()
            return .inputEnd
        case ascii("\\") where peekIs("b", 1) || peekIs("B", 1):
            let negated = peekIs("B", 1)
            index += 2
            try refuseQuantifier()
            return .wordBoundary(negated: negated)
        case ascii("(") where peekIs("?", 1) && (peekIs("=", 2) || peekIs("!", 2)):
            let negated = peekIs("!", 2)
            index += 3
            let body = try parseGroupBody()
            // Lookaheads are not quantifiable in `u` mode.
            try refuseQuantifier()
            return .lookahead(body, negated: negated)
        case ascii("(") where peekIs("?", 1) && peekIs("<", 2) && (peekIs("=", 3) || peekIs("!", 3)):
            throw error("look-behind assertions are not supported")
        default:
            let atom = try parseAtom()
            return try parseQuantifier(for: atom)
        }
    }

    private mutating func refuseQuantifier() throws(PatternSyntaxError) {
        if let c = peek(), c == ascii("*") || c == ascii("+") || c == ascii("?") || c == ascii("{") {
            throw error("nothing to repeat")
        }
    }

    private mutating func parseGroupBody() throws(PatternSyntaxError) -> PatternNode {
        nesting += 1
        guard nesting <= Self.maxNesting else { throw error("groups are nested more than \(Self.maxNesting) deep") }
        let body = try parseDisjunction()
        guard peekIs(")") else { throw error("unterminated group") }
        index += 1
        nesting -= 1
        return body
    }

    private mutating func parseAtom() throws(PatternSyntaxError) -> PatternNode {
        guard let c = peek() else { throw error("unexpected end of pattern") }
        switch c {
        case ascii("."):
            index += 1
            return .any
        case ascii("["):
            return .set(try parseClass())
        case ascii("\\"):
            index += 1
            return try parseAtomEscape()
        case ascii("("):
            if peekIs("?", 1) {
                if peekIs(":", 2) {
                    index += 3
                } else if peekIs("<", 2) {
                    index += 3
                    try parseGroupName()
                } else {
                    throw error("invalid group")
                }
            } else {
                index += 1
            }
            return try parseGroupBody()
        case ascii(")"):
            throw error("unmatched ')'")
        case ascii("*"), ascii("+"), ascii("?"), ascii("{"):
            throw error("nothing to repeat")
        case ascii("]"), ascii("}"):
            throw error("lone '\(Character(Unicode.Scalar(UInt8(c))))'")
        default:
            index += 1
            return .char(c)
        }
    }

    private mutating func parseGroupName() throws(PatternSyntaxError) {
        var name = ""
        while let c = peek(), c != ascii(">") {
            guard let scalar = Unicode.Scalar(c),
                  scalar == "$" || scalar == "_" || scalar.properties.isAlphabetic
                    || (!name.isEmpty && (scalar.properties.numericType == .decimal))
            else { throw error("invalid group name") }
            name.unicodeScalars.append(scalar)
            index += 1
        }
        guard peekIs(">"), !name.isEmpty else { throw error("invalid group name") }
        index += 1
        guard groupNames.insert(name).inserted else { throw error("duplicate group name '\(name)'") }
    }

    private mutating func parseQuantifier(for atom: PatternNode) throws(PatternSyntaxError) -> PatternNode {
        guard let c = peek() else { return atom }
        let min: Int
        let max: Int?
        switch c {
        case ascii("*"): index += 1; min = 0; max = nil
        case ascii("+"): index += 1; min = 1; max = nil
        case ascii("?"): index += 1; min = 0; max = 1
        case ascii("{"):
            index += 1
            guard let low = parseDecimal() else { throw error("incomplete quantifier") }
            min = low
            if peekIs(",") {
                index += 1
                if peekIs("}") {
                    max = nil
                } else {
                    guard let high = parseDecimal() else { throw error("incomplete quantifier") }
                    max = high
                }
            } else {
                max = low
            }
            guard peekIs("}") else { throw error("incomplete quantifier") }
            index += 1
            if let max, max < min { throw error("numbers out of order in {} quantifier") }
        default:
            return atom
        }
        var greedy = true
        if peekIs("?") {
            index += 1
            greedy = false
        }
        try refuseQuantifier()
        return .repetition(atom, min: min, max: max, greedy: greedy)
    }

    /// Digits; values past a million saturate (the compiler refuses what it cannot expand).
    private mutating func parseDecimal() -> Int? {
        var value = 0
        var any = false
        while let c = peek(), c >= ascii("0"), c <= ascii("9") {
            value = Swift.min(value * 10 + Int(c - ascii("0")), 1_000_000_000)
            any = true
            index += 1
        }
        return any ? value : nil
    }

    // MARK: Escapes

    private mutating func parseAtomEscape() throws(PatternSyntaxError) -> PatternNode {
        guard let c = peek() else { throw error("\\ at end of pattern") }
        switch c {
        case ascii("1")...ascii("9"):
            throw error("back-references are not supported")
        case ascii("k"):
            throw error("back-references are not supported")
        case ascii("d"), ascii("D"), ascii("s"), ascii("S"), ascii("w"), ascii("W"):
            index += 1
            return .set(CodePointSet.classEscape(c))
        case ascii("p"), ascii("P"):
            index += 1
            let property = try parsePropertyName()
            return .set(CodePointSet(ranges: [], properties: [.init(property: property, negated: c == ascii("P"))], negated: false))
        default:
            return .char(try parseCharacterEscape(inClass: false))
        }
    }

    /// After the backslash: `\f \n \r \t \v`, `\cX`, `\0`, `\xHH`, `\uHHHH`, `\u{H...}`,
    /// and identity escapes of syntax characters and `/` (and `-` in a class).
    private mutating func parseCharacterEscape(inClass: Bool) throws(PatternSyntaxError) -> UInt32 {
        guard let c = peek() else { throw error("\\ at end of pattern") }
        index += 1
        switch c {
        case ascii("f"): return 0x0C
        case ascii("n"): return 0x0A
        case ascii("r"): return 0x0D
        case ascii("t"): return 0x09
        case ascii("v"): return 0x0B
        case ascii("c"):
            guard let letter = peek(), (ascii("a")...ascii("z")).contains(letter) || (ascii("A")...ascii("Z")).contains(letter) else {
                throw error("invalid \\c escape")
            }
            index += 1
            return letter % 32
        case ascii("0"):
            if let next = peek(), next >= ascii("0"), next <= ascii("9") { throw error("invalid decimal escape") }
            return 0
        case ascii("x"):
            guard let value = parseHex(count: 2) else { throw error("invalid \\x escape") }
            return value
        case ascii("u"):
            return try parseUnicodeEscape()
        case ascii("^"), ascii("$"), ascii("\\"), ascii("."), ascii("*"), ascii("+"), ascii("?"),
             ascii("("), ascii(")"), ascii("["), ascii("]"), ascii("{"), ascii("}"), ascii("|"), ascii("/"):
            return c
        case ascii("-") where inClass:
            return c
        default:
            throw error("invalid escape")
        }
    }

    private mutating func parseUnicodeEscape() throws(PatternSyntaxError) -> UInt32 {
        if peekIs("{") {
            index += 1
            var value: UInt32 = 0
            var digits = 0
            while let c = peek(), let digit = hexValue(c) {
                value = value * 16 + digit
                digits += 1
                guard value <= 0x10FFFF else { throw error("\\u{...} beyond U+10FFFF") }
                index += 1
            }
            guard digits > 0, peekIs("}") else { throw error("invalid \\u{...} escape") }
            index += 1
            return value
        }
        guard let value = parseHex(count: 4) else { throw error("invalid \\u escape") }
        // A surrogate pair written as two escapes is one code point in `u` mode.
        if (0xD800...0xDBFF).contains(value), peekIs("\\"), peekIs("u", 1) {
            let save = index
            index += 2
            if let low = parseHex(count: 4), (0xDC00...0xDFFF).contains(low) {
                return 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            }
            index = save
        }
        return value
    }

    private mutating func parseHex(count: Int) -> UInt32? {
        guard index + count <= source.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<count {
            guard let digit = hexValue(source[index + offset]) else { return nil }
            value = value * 16 + digit
        }
        index += count
        return value
    }

    private func hexValue(_ c: UInt32) -> UInt32? {
        switch c {
        case ascii("0")...ascii("9"): c - ascii("0")
        case ascii("a")...ascii("f"): c - ascii("a") + 10
        case ascii("A")...ascii("F"): c - ascii("A") + 10
        default: nil
        }
    }

    private mutating func parsePropertyName() throws(PatternSyntaxError) -> UnicodeProperty {
        guard peekIs("{") else { throw error("invalid property escape") }
        index += 1
        var name = ""
        while let c = peek(), c != ascii("}") {
            guard let scalar = Unicode.Scalar(c), scalar.isASCII,
                  scalar.properties.isAlphabetic || scalar.properties.numericType == .decimal || scalar == "_" || scalar == "="
            else { throw error("invalid property escape") }
            name.unicodeScalars.append(scalar)
            index += 1
        }
        guard peekIs("}"), !name.isEmpty else { throw error("invalid property escape") }
        index += 1
        guard let property = UnicodeProperty(name: name) else {
            throw error("Unicode property '\(name)' is not supported")
        }
        return property
    }

    // MARK: Classes

    private mutating func parseClass() throws(PatternSyntaxError) -> CodePointSet {
        index += 1  // [
        var negated = false
        if peekIs("^") {
            negated = true
            index += 1
        }
        var set = CodePointSet(ranges: [], properties: [], negated: negated)
        while true {
            guard let c = peek() else { throw error("unterminated character class") }
            if c == ascii("]") {
                index += 1
                break
            }
            let first = try parseClassAtom()
            if peekIs("-"), let next = peek(1), next != ascii("]") {
                index += 1
                let second = try parseClassAtom()
                guard case .single(let low) = first, case .single(let high) = second else {
                    throw error("invalid character class range")
                }
                guard low <= high else { throw error("range out of order in character class") }
                set.ranges.append(low...high)
            } else {
                switch first {
                case .single(let value): set.ranges.append(value...value)
                case .set(let escape): set.absorb(escape)
                }
            }
        }
        set.normalize()
        return set
    }

    private enum ClassAtom {
        case single(UInt32)
        case set(CodePointSet)
    }

    private mutating func parseClassAtom() throws(PatternSyntaxError) -> ClassAtom {
        guard let c = peek() else { throw error("unterminated character class") }
        guard c == ascii("\\") else {
            index += 1
            return .single(c)
        }
        index += 1
        guard let e = peek() else { throw error("\\ at end of pattern") }
        switch e {
        case ascii("b"):
            index += 1
            return .single(0x08)
        case ascii("d"), ascii("D"), ascii("s"), ascii("S"), ascii("w"), ascii("W"):
            index += 1
            return .set(CodePointSet.classEscape(e))
        case ascii("p"), ascii("P"):
            index += 1
            let property = try parsePropertyName()
            return .set(CodePointSet(ranges: [], properties: [.init(property: property, negated: e == ascii("P"))], negated: false))
        case ascii("1")...ascii("9"), ascii("k"), ascii("B"):
            throw error("invalid escape in character class")
        default:
            return .single(try parseCharacterEscape(inClass: true))
        }
    }
}

@inline(__always) func ascii(_ char: Unicode.Scalar) -> UInt32 { char.value }
