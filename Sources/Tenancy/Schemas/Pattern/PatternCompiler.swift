/// One character test, the kind a loop can repeat without a backtrack frame per iteration.
enum SingleAtom: Sendable, Equatable {
    case char(UInt32)
    case any
    case set(Int)
}

enum Instruction: Sendable {
    case char(UInt32)
    case single(SingleAtom)
    /// `atom{min,max}` for a single-character atom (`max` is `Int.max` when unbounded).
    case loop(SingleAtom, min: Int, max: Int, greedy: Bool)
    /// Try `first`; on failure resume at `second`.
    case split(Int, Int)
    case jump(Int)
    case inputStart
    case inputEnd
    case wordBoundary(negated: Bool)
    /// Runs program `body` at the current position; consumes nothing.
    case lookahead(body: Int, negated: Bool)
    case mark(register: Int)
    case requireProgress(register: Int)
    case match
}

/// Turns a pattern tree into backtracking programs: one for the pattern and one per
/// lookahead body.
struct PatternCompiler {
    var programs: [[Instruction]] = [[]]
    var sets: [CodePointSet] = []
    var registerCount = 0
    private var total = 0

    mutating func compileMain(_ node: PatternNode) throws(PatternSyntaxError) {
        var main: [Instruction] = []
        try emit(node, into: &main)
        main.append(.match)
        programs[0] = main
    }

    private mutating func append(_ instruction: Instruction, to program: inout [Instruction]) throws(PatternSyntaxError) {
        total += 1
        guard total <= ECMAPattern.maxInstructions else {
            throw PatternSyntaxError(message: "the pattern is too large once its repetitions are expanded")
        }
        program.append(instruction)
    }

    private mutating func singleAtom(_ node: PatternNode) -> SingleAtom? {
        switch node {
        case .char(let c): return .char(c)
        case .any: return .any
        case .set(let set):
            sets.append(set)
            return .set(sets.count - 1)
        case .concat(let nodes) where nodes.count == 1: return singleAtom(nodes[0])
        case .alternation(let nodes) where nodes.count == 1: return singleAtom(nodes[0])
        default: return nil
        }
    }

    private mutating func emit(_ node: PatternNode, into program: inout [Instruction]) throws(PatternSyntaxError) {
        switch node {
        case .empty:
            break
        case .char(let c):
            try append(.char(c), to: &program)
        case .any, .set:
            if let atom = singleAtom(node) { try append(.single(atom), to: &program) }
        case .inputStart:
            try append(.inputStart, to: &program)
        case .inputEnd:
            try append(.inputEnd, to: &program)
        case .wordBoundary(let negated):
            try append(.wordBoundary(negated: negated), to: &program)
        case .lookahead(let body, let negated):
            programs.append([])
            let index = programs.count - 1
            var sub: [Instruction] = []
            try emit(body, into: &sub)
            try append(.match, to: &sub)
            programs[index] = sub
            try append(.lookahead(body: index, negated: negated), to: &program)
        case .concat(let nodes):
            for node in nodes { try emit(node, into: &program) }
        case .alternation(let nodes):
            var jumps: [Int] = []
            for (offset, alternative) in nodes.enumerated() {
                if offset == nodes.count - 1 {
                    try emit(alternative, into: &program)
                } else {
                    let split = program.count
                    try append(.split(split + 1, -1), to: &program)
                    try emit(alternative, into: &program)
                    jumps.append(program.count)
                    try append(.jump(-1), to: &program)
                    program[split] = .split(split + 1, program.count)
                }
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repetition(let body, let min, let max, let greedy):
            if let atom = singleAtom(body) {
                try append(.loop(atom, min: min, max: max ?? Int.max, greedy: greedy), to: &program)
                return
            }
            for _ in 0..<min { try emit(body, into: &program) }
            let checksProgress = body.canMatchEmpty
            if let max {
                // Each optional copy may be skipped, which skips the rest too.
                var exits: [Int] = []
                for _ in min..<max {
                    exits.append(program.count)
                    try append(.split(-1, -1), to: &program)
                    try emitIteration(body, checksProgress: checksProgress, into: &program)
                }
                let end = program.count
                for exit in exits { program[exit] = greedy ? .split(exit + 1, end) : .split(end, exit + 1) }
            } else {
                let loop = program.count
                try append(.split(-1, -1), to: &program)
                try emitIteration(body, checksProgress: checksProgress, into: &program)
                try append(.jump(loop), to: &program)
                let end = program.count
                program[loop] = greedy ? .split(loop + 1, end) : .split(end, loop + 1)
            }
        }
    }

    private mutating func emitIteration(_ body: PatternNode, checksProgress: Bool, into program: inout [Instruction]) throws(PatternSyntaxError) {
        guard checksProgress else {
            try emit(body, into: &program)
            return
        }
        let register = registerCount
        registerCount += 1
        try append(.mark(register: register), to: &program)
        try emit(body, into: &program)
        try append(.requireProgress(register: register), to: &program)
    }
}
