/// A character class: code point ranges plus Unicode property tests, possibly negated.
struct CodePointSet: Sendable {
    struct PropertyTest: Sendable {
        var property: UnicodeProperty
        var negated: Bool
    }

    /// Sorted and merged once parsed (see `normalize`).
    var ranges: [ClosedRange<UInt32>]
    var properties: [PropertyTest]
    var negated: Bool

    func contains(_ codePoint: UInt32) -> Bool {
        var found = false
        // Binary search over the merged ranges.
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let mid = (low + high) >> 1
            let range = ranges[mid]
            if codePoint < range.lowerBound {
                high = mid - 1
            } else if codePoint > range.upperBound {
                low = mid + 1
            } else {
                found = true
                break
            }
        }
        if !found, !properties.isEmpty, let scalar = Unicode.Scalar(codePoint) {
            for test in properties where test.property.matches(scalar) != test.negated {
                found = true
                break
            }
        }
        return found != negated
    }

    mutating func normalize() {
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for range in ranges {
            if let last = merged.last, range.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        ranges = merged
    }

    /// Adds a class escape (`\d`, `\P{L}`, ...) met inside `[...]`.
    mutating func absorb(_ other: CodePointSet) {
        if other.negated {
            // Only \D, \S, \W come negated; their complement is a range list.
            ranges += Self.complement(other.ranges)
        } else {
            ranges += other.ranges
        }
        properties += other.properties
    }

    static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var sorted = CodePointSet(ranges: ranges, properties: [], negated: false)
        sorted.normalize()
        var result: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for range in sorted.ranges {
            if range.lowerBound > next { result.append(next...(range.lowerBound - 1)) }
            next = range.upperBound + 1
        }
        if next <= 0x10FFFF { result.append(next...0x10FFFF) }
        return result
    }

    static let digitRanges: [ClosedRange<UInt32>] = [0x30...0x39]
    static let wordRanges: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
    /// ECMA-262 WhiteSpace and LineTerminator.
    static let spaceRanges: [ClosedRange<UInt32>] = [
        0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
        0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
    ]

    /// `\d \D \s \S \w \W` (ASCII digits and word characters, as ECMA-262 without `i`).
    static func classEscape(_ letter: UInt32) -> CodePointSet {
        switch letter {
        case ascii("d"): CodePointSet(ranges: digitRanges, properties: [], negated: false)
        case ascii("D"): CodePointSet(ranges: digitRanges, properties: [], negated: true)
        case ascii("s"): CodePointSet(ranges: spaceRanges, properties: [], negated: false)
        case ascii("S"): CodePointSet(ranges: spaceRanges, properties: [], negated: true)
        case ascii("w"): CodePointSet(ranges: wordRanges, properties: [], negated: false)
        default: CodePointSet(ranges: wordRanges, properties: [], negated: true)
        }
    }
}

/// The `\p{...}` properties supported: General_Category values (short and long names, bare
/// or as `gc=`/`General_Category=`) and a few binary properties. Scripts are refused: the
/// standard library has no script data. Answers come from the toolchain's Unicode tables,
/// which may be a different Unicode version from a browser's.
enum UnicodeProperty: Sendable, Equatable {
    /// Bit `n` is the n-th case of `Unicode.GeneralCategory` (see `categoryBit`).
    case generalCategory(mask: UInt32)
    case any
    case ascii
    case assigned
    case alphabetic
    case whiteSpace
    case uppercase
    case lowercase
    case hexDigit
    case asciiHexDigit
    case emoji
    case emojiPresentation

    init?(name: String) {
        var valueName = name
        if let equals = name.firstIndex(of: "=") {
            let key = name[..<equals]
            guard key == "General_Category" || key == "gc" else { return nil }
            valueName = String(name[name.index(after: equals)...])
            guard let mask = Self.categoryMasks[valueName] else { return nil }
            self = .generalCategory(mask: mask)
            return
        }
        if let mask = Self.categoryMasks[valueName] {
            self = .generalCategory(mask: mask)
            return
        }
        switch valueName {
        case "Any": self = .any
        case "ASCII": self = .ascii
        case "Assigned": self = .assigned
        case "Alphabetic", "Alpha": self = .alphabetic
        case "White_Space", "space": self = .whiteSpace
        case "Uppercase", "Upper": self = .uppercase
        case "Lowercase", "Lower": self = .lowercase
        case "Hex_Digit", "Hex": self = .hexDigit
        case "ASCII_Hex_Digit", "AHex": self = .asciiHexDigit
        case "Emoji": self = .emoji
        case "Emoji_Presentation", "EPres": self = .emojiPresentation
        default: return nil
        }
    }

    func matches(_ scalar: Unicode.Scalar) -> Bool {
        switch self {
        case .generalCategory(let mask): mask & (1 << Self.categoryBit(scalar.properties.generalCategory)) != 0
        case .any: true
        case .ascii: scalar.isASCII
        case .assigned: scalar.properties.generalCategory != .unassigned
        case .alphabetic: scalar.properties.isAlphabetic
        case .whiteSpace: scalar.properties.isWhitespace
        case .uppercase: scalar.properties.isUppercase
        case .lowercase: scalar.properties.isLowercase
        case .hexDigit: scalar.properties.isHexDigit
        case .asciiHexDigit: scalar.properties.isASCIIHexDigit
        case .emoji: scalar.properties.isEmoji
        case .emojiPresentation: scalar.properties.isEmojiPresentation
        }
    }

    static func categoryBit(_ category: Unicode.GeneralCategory) -> UInt32 {
        switch category {
        case .uppercaseLetter: 0
        case .lowercaseLetter: 1
        case .titlecaseLetter: 2
        case .modifierLetter: 3
        case .otherLetter: 4
        case .nonspacingMark: 5
        case .spacingMark: 6
        case .enclosingMark: 7
        case .decimalNumber: 8
        case .letterNumber: 9
        case .otherNumber: 10
        case .connectorPunctuation: 11
        case .dashPunctuation: 12
        case .openPunctuation: 13
        case .closePunctuation: 14
        case .initialPunctuation: 15
        case .finalPunctuation: 16
        case .otherPunctuation: 17
        case .mathSymbol: 18
        case .currencySymbol: 19
        case .modifierSymbol: 20
        case .otherSymbol: 21
        case .spaceSeparator: 22
        case .lineSeparator: 23
        case .paragraphSeparator: 24
        case .control: 25
        case .format: 26
        case .surrogate: 27
        case .privateUse: 28
        case .unassigned: 29
        @unknown default: 29
        }
    }

    private static func bits(_ range: ClosedRange<UInt32>) -> UInt32 {
        range.reduce(0) { $0 | (1 << $1) }
    }

    private static let categoryMasks: [String: UInt32] = {
        let letters = bits(0...4), marks = bits(5...7), numbers = bits(8...10)
        let punctuation = bits(11...17), symbols = bits(18...21), separators = bits(22...24), other = bits(25...29)
        let table: [([String], UInt32)] = [
            (["L", "Letter"], letters),
            (["LC", "Cased_Letter"], bits(0...2)),
            (["Lu", "Uppercase_Letter"], 1 << 0),
            (["Ll", "Lowercase_Letter"], 1 << 1),
            (["Lt", "Titlecase_Letter"], 1 << 2),
            (["Lm", "Modifier_Letter"], 1 << 3),
            (["Lo", "Other_Letter"], 1 << 4),
            (["M", "Mark", "Combining_Mark"], marks),
            (["Mn", "Nonspacing_Mark"], 1 << 5),
            (["Mc", "Spacing_Mark"], 1 << 6),
            (["Me", "Enclosing_Mark"], 1 << 7),
            (["N", "Number"], numbers),
            (["Nd", "Decimal_Number", "digit"], 1 << 8),
            (["Nl", "Letter_Number"], 1 << 9),
            (["No", "Other_Number"], 1 << 10),
            (["P", "Punctuation", "punct"], punctuation),
            (["Pc", "Connector_Punctuation"], 1 << 11),
            (["Pd", "Dash_Punctuation"], 1 << 12),
            (["Ps", "Open_Punctuation"], 1 << 13),
            (["Pe", "Close_Punctuation"], 1 << 14),
            (["Pi", "Initial_Punctuation"], 1 << 15),
            (["Pf", "Final_Punctuation"], 1 << 16),
            (["Po", "Other_Punctuation"], 1 << 17),
            (["S", "Symbol"], symbols),
            (["Sm", "Math_Symbol"], 1 << 18),
            (["Sc", "Currency_Symbol"], 1 << 19),
            (["Sk", "Modifier_Symbol"], 1 << 20),
            (["So", "Other_Symbol"], 1 << 21),
            (["Z", "Separator"], separators),
            (["Zs", "Space_Separator"], 1 << 22),
            (["Zl", "Line_Separator"], 1 << 23),
            (["Zp", "Paragraph_Separator"], 1 << 24),
            (["C", "Other"], other),
            (["Cc", "Control", "cntrl"], 1 << 25),
            (["Cf", "Format"], 1 << 26),
            (["Cs", "Surrogate"], 1 << 27),
            (["Co", "Private_Use"], 1 << 28),
            (["Cn", "Unassigned"], 1 << 29),
        ]
        var masks: [String: UInt32] = [:]
        for (names, mask) in table {
            for name in names { masks[name] = mask }
        }
        return masks
    }()
}
