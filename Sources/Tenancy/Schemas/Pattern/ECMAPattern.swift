/// A compiled ECMA-262 regular expression (JSON Schema `pattern`), searched unanchored.
///
/// Our own backtracking matcher rather than `Regex` or `NSRegularExpression`: both accept
/// syntax ECMA-262 refuses and differ in meaning (`\d` and `\w` are Unicode-wide, `$`
/// matches before a final newline, `Regex` matches grapheme clusters), `Regex` is not
/// `Sendable`, and neither bounds its work. Tenants supply the pattern and the data plane
/// runs it on every write, so every search here has a step budget: a pattern that would
/// backtrack catastrophically gives `.tooExpensive` instead of stalling a thread, and the
/// answer is the same on every node because it counts steps, not time.
///
/// Semantics are those of a `u`-flag ECMA-262 regex without other flags: code points, not
/// UTF-16 units or graphemes; `.` excludes `\n \r \u2028 \u2029`; `^`/`$` are the ends of
/// the input; `\d \w \b` are ASCII. Known differences from a JavaScript engine: `\p{...}`
/// knows General_Category values and a few binary properties only (no scripts), from the
/// toolchain's Unicode version; duplicate group names are refused even in different
/// alternatives (ES2025 allows that); group names are letters, digits, `$` and `_`, without
/// escapes; modifiers such as `(?i:...)` are refused; a pattern naming a lone surrogate
/// never matches (Swift strings hold none).
struct ECMAPattern: Sendable {
    enum Outcome: Sendable, Equatable {
        case match
        case noMatch
        case tooExpensive
    }

    /// Instructions past this are refused at put time (`(a{1000}){1000}` expands).
    static let maxInstructions = 20_000

    let source: String
    private let programs: [[Instruction]]
    private let sets: [CodePointSet]
    private let registerCount: Int
    private let anchoredAtStart: Bool

    init(_ source: String) throws(PatternSyntaxError) {
        let tree = try PatternParser.parse(source)
        var compiler = PatternCompiler()
        try compiler.compileMain(tree)
        self.source = source
        self.programs = compiler.programs
        self.sets = compiler.sets
        self.registerCount = compiler.registerCount
        self.anchoredAtStart = tree.isAnchoredAtStart
    }

    /// The steps a search may take on `byteCount` bytes: room for linear work on any
    /// length, not for the quadratic or exponential blow-ups of a hostile pattern.
    static func stepBudget(byteCount: Int) -> Int { 1_000_000 + 64 * byteCount }

    /// Whether the pattern matches anywhere in `text`.
    func search(_ text: String) -> Outcome {
        var text = text
        return text.withUTF8 { bytes in
            var steps = Self.stepBudget(byteCount: bytes.count)
            var registers = [Int](repeating: -1, count: registerCount)
            var start = 0
            while true {
                switch run(0, at: start, in: bytes, registers: &registers, steps: &steps) {
                case .match: return .match
                case .tooExpensive: return .tooExpensive
                case .noMatch: break
                }
                if anchoredAtStart || start >= bytes.count { return .noMatch }
                start += UTF8Decoding.length(of: bytes[start])
            }
        }
    }

    private struct Frame {
        enum Kind: UInt8 {
            /// Resume at `pc`, `position`.
            case resume
            /// Put `aux` back into register `pc`.
            case restoreRegister
            /// A greedy single-character loop: give back one more character, down to `aux`.
            case greedyLoop
            /// A lazy single-character loop: take one more character, `aux` more at most.
            case lazyLoop
        }
        var kind: Kind
        var pc: Int32
        var position: Int
        var aux: Int
    }

    private func run(
        _ programIndex: Int, at start: Int, in text: UnsafeBufferPointer<UInt8>,
        registers: inout [Int], steps: inout Int
    ) -> Outcome {
        let program = programs[programIndex]
        var stack: [Frame] = []
        var pc = 0
        var position = start
        while true {
            steps -= 1
            if steps < 0 { return .tooExpensive }
            var failed = false
            switch program[pc] {
            case .char(let expected):
                if position < text.count, expected < 0x80 {
                    if text[position] == UInt8(truncatingIfNeeded: expected) { position += 1; pc += 1 } else { failed = true }
                } else if position < text.count {
                    let (codePoint, length) = UTF8Decoding.decode(text, at: position)
                    if codePoint == expected { position += length; pc += 1 } else { failed = true }
                } else {
                    failed = true
                }
            case .single(let atom):
                if position < text.count, let length = matchSingle(atom, text, at: position) {
                    position += length
                    pc += 1
                } else {
                    failed = true
                }
            case .loop(let atom, let min, let max, let greedy):
                var count = 0
                var end = position
                var minEnd = position
                let limit = greedy ? max : min
                while count < limit, end < text.count, let length = matchSingle(atom, text, at: end) {
                    end += length
                    count += 1
                    if count == min { minEnd = end }
                    steps -= 1
                }
                if steps < 0 { return .tooExpensive }
                if count < min {
                    failed = true
                } else if greedy {
                    if end > minEnd { stack.append(Frame(kind: .greedyLoop, pc: Int32(pc + 1), position: end, aux: minEnd)) }
                    position = end
                    pc += 1
                } else {
                    if max > min { stack.append(Frame(kind: .lazyLoop, pc: Int32(pc + 1), position: end, aux: max - min)) }
                    position = end
                    pc += 1
                }
            case .split(let first, let second):
                stack.append(Frame(kind: .resume, pc: Int32(second), position: position, aux: 0))
                pc = first
            case .jump(let target):
                pc = target
            case .inputStart:
                if position == 0 { pc += 1 } else { failed = true }
            case .inputEnd:
                if position == text.count { pc += 1 } else { failed = true }
            case .wordBoundary(let negated):
                let before = position > 0 && UTF8Decoding.isWordByte(text[position - 1])
                let after = position < text.count && UTF8Decoding.isWordByte(text[position])
                if (before != after) != negated { pc += 1 } else { failed = true }
            case .lookahead(let body, let negated):
                let outcome = run(body, at: position, in: text, registers: &registers, steps: &steps)
                if outcome == .tooExpensive { return .tooExpensive }
                if (outcome == .match) != negated { pc += 1 } else { failed = true }
            case .mark(let register):
                stack.append(Frame(kind: .restoreRegister, pc: Int32(register), position: 0, aux: registers[register]))
                registers[register] = position
                pc += 1
            case .requireProgress(let register):
                // ECMA-262 RepeatMatcher: an iteration past the minimum that consumed
                // nothing fails (this is what ends `(a*)*`).
                if registers[register] == position { failed = true } else { pc += 1 }
            case .match:
                return .match
            }
            guard failed else { continue }
            backtrack: while true {
                guard let frame = stack.popLast() else { return .noMatch }
                switch frame.kind {
                case .restoreRegister:
                    registers[Int(frame.pc)] = frame.aux
                case .resume:
                    pc = Int(frame.pc)
                    position = frame.position
                    break backtrack
                case .greedyLoop:
                    let shorter = UTF8Decoding.previousBoundary(text, before: frame.position)
                    if shorter > frame.aux {
                        stack.append(Frame(kind: .greedyLoop, pc: frame.pc, position: shorter, aux: frame.aux))
                    }
                    pc = Int(frame.pc)
                    position = shorter
                    break backtrack
                case .lazyLoop:
                    guard case .loop(let atom, _, _, _) = program[Int(frame.pc) - 1],
                          frame.position < text.count,
                          let length = matchSingle(atom, text, at: frame.position)
                    else { continue backtrack }
                    let longer = frame.position + length
                    if frame.aux > 1 {
                        stack.append(Frame(kind: .lazyLoop, pc: frame.pc, position: longer, aux: frame.aux - 1))
                    }
                    pc = Int(frame.pc)
                    position = longer
                    break backtrack
                }
            }
        }
    }

    /// The length in bytes of the one character `atom` matches at `position`, if it does.
    @inline(__always)
    private func matchSingle(_ atom: SingleAtom, _ text: UnsafeBufferPointer<UInt8>, at position: Int) -> Int? {
        let byte = text[position]
        switch atom {
        case .char(let expected):
            if expected < 0x80 { return byte == UInt8(truncatingIfNeeded: expected) ? 1 : nil }
            let (codePoint, length) = UTF8Decoding.decode(text, at: position)
            return codePoint == expected ? length : nil
        case .any:
            if byte < 0x80 { return byte == 0x0A || byte == 0x0D ? nil : 1 }
            let (codePoint, length) = UTF8Decoding.decode(text, at: position)
            return codePoint == 0x2028 || codePoint == 0x2029 ? nil : length
        case .set(let index):
            let (codePoint, length) = byte < 0x80 ? (UInt32(byte), 1) : UTF8Decoding.decode(text, at: position)
            return sets[index].contains(codePoint) ? length : nil
        }
    }
}

/// Reading code points out of a Swift string's (always valid) UTF-8.
enum UTF8Decoding {
    @inline(__always)
    static func length(of lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }

    @inline(__always)
    static func decode(_ text: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int) {
        let lead = text[index]
        if lead < 0x80 { return (UInt32(lead), 1) }
        if lead < 0xE0 {
            return ((UInt32(lead & 0x1F) << 6) | UInt32(text[index + 1] & 0x3F), 2)
        }
        if lead < 0xF0 {
            return ((UInt32(lead & 0x0F) << 12) | (UInt32(text[index + 1] & 0x3F) << 6) | UInt32(text[index + 2] & 0x3F), 3)
        }
        return (
            (UInt32(lead & 0x07) << 18) | (UInt32(text[index + 1] & 0x3F) << 12)
                | (UInt32(text[index + 2] & 0x3F) << 6) | UInt32(text[index + 3] & 0x3F), 4
        )
    }

    @inline(__always)
    static func previousBoundary(_ text: UnsafeBufferPointer<UInt8>, before index: Int) -> Int {
        var i = index - 1
        while i > 0, text[i] & 0xC0 == 0x80 { i -= 1 }
        return i
    }

    /// `\w` is ASCII, so a byte decides (continuation bytes are never word characters).
    @inline(__always)
    static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F || (byte >= 0x61 && byte <= 0x7A)
    }
}
