import TopGunCore
import Foundation

/// Reads the members of a JSON object body, collecting every problem with its JSON Pointer
/// instead of stopping at the first, and refusing members it was not asked about (so a
/// misspelt field never passes silently).
///
///     var reader = try BodyReader(body, pointer: "")
///     let slug = reader.string("slug", required: true, check: TextRules.slug)
///     try reader.finish()   // throws every problem found, unknown members included
struct BodyReader {
    private let members: JSONObject
    private let pointer: String
    private var read: Set<String> = []
    private(set) var problems: [FieldProblem] = []

    init(_ value: JSONValue, pointer: String = "") throws(APIError) {
        guard case .object(let members) = value else {
            throw APIError.validation(pointer: pointer, "must be a JSON object, not \(value.typeName)")
        }
        self.members = members
        self.pointer = pointer
    }

    /// Reads an object nested under `name` with a reader of its own; its problems join ours
    /// when it is merged back with `absorb`.
    func child(_ value: JSONValue, name: String) -> Result<BodyReader, APIError> {
        do { return .success(try BodyReader(value, pointer: path(name))) } catch { return .failure(error) }
    }

    var isEmpty: Bool { members.isEmpty }

    func path(_ name: String) -> String {
        pointer + "/" + name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    mutating func problem(_ name: String?, _ detail: String) {
        problems.append(FieldProblem(pointer: name.map(path) ?? pointer, detail))
    }

    mutating func add(_ problem: FieldProblem) {
        problems.append(problem)
    }

    mutating func absorb(_ other: BodyReader) {
        problems += other.problems
    }

    mutating func absorb(_ error: APIError) {
        problems += error.errors.isEmpty ? [FieldProblem(pointer: pointer, error.detail)] : error.errors
    }

    /// The raw member, marked as read; nil (and a problem if `required`) when absent.
    mutating func value(_ name: String, required: Bool = false) -> JSONValue? {
        read.insert(name)
        guard let value = members[name] else {
            if required { problem(name, "is required") }
            return nil
        }
        return value
    }

    mutating func string(_ name: String, required: Bool = false, check: ((String) -> String?)? = nil) -> String? {
        guard let value = value(name, required: required) else { return nil }
        guard case .string(let text) = value else {
            problem(name, "must be a string, not \(value.typeName)")
            return nil
        }
        if let check, let complaint = check(text) {
            problem(name, complaint)
            return nil
        }
        return text
    }

    mutating func integer(_ name: String, required: Bool = false, in range: ClosedRange<Int64>) -> Int64? {
        guard let value = value(name, required: required) else { return nil }
        let number: Int64
        switch value {
        case .number(let written) where written.int64Value != nil: number = written.int64Value!
        default:
            problem(name, "must be an integer, not \(value.typeName)")
            return nil
        }
        guard range.contains(number) else {
            problem(name, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return number
    }

    mutating func bool(_ name: String, required: Bool = false) -> Bool? {
        guard let value = value(name, required: required) else { return nil }
        guard case .bool(let flag) = value else {
            problem(name, "must be a boolean, not \(value.typeName)")
            return nil
        }
        return flag
    }

    mutating func stringArray(_ name: String, required: Bool = false) -> [String]? {
        guard let value = value(name, required: required) else { return nil }
        guard case .array(let items) = value else {
            problem(name, "must be an array, not \(value.typeName)")
            return nil
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                problems.append(FieldProblem(pointer: path(name) + "/\(index)", "must be a string, not \(item.typeName)"))
                continue
            }
            strings.append(text)
        }
        return strings.count == items.count ? strings : nil
    }

    /// Throws every problem found, plus one per member nobody asked about.
    mutating func finish() throws(APIError) {
        for name in members.names.sorted() where !read.contains(name) {
            problem(name, "unknown member")
        }
        if !problems.isEmpty {
            throw APIError.validation(problems, detail: problems.count == 1 ? nil : "\(problems.count) problems in the request body")
        }
    }
}

/// The text rules of the contract, as checks that return a complaint or nil.
enum TextRules {
    static func slug(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        guard (1...63).contains(bytes.count), allowed, bytes.first != 0x2D, bytes.last != 0x2D else {
            return "must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        }
        return nil
    }

    /// Names and labels: `1...maximum` characters (code points), not only white space, no
    /// control characters (Unicode Cc, NUL included).
    static func label(maximum: Int) -> @Sendable (String) -> String? {
        { text in
            let count = text.unicodeScalars.count
            guard count >= 1 else { return "must not be empty" }
            guard count <= maximum else { return "must be at most \(maximum) characters" }
            guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return "must not contain control characters"
            }
            guard !text.unicodeScalars.allSatisfy({ $0.properties.isWhitespace || $0 == "\u{FEFF}" }) else { return "must not be only white space" }
            return nil
        }
    }

    /// Free text with a length limit and no control characters (e.g. a suspension reason).
    static func text(maximum: Int) -> @Sendable (String) -> String? {
        { text in
            let count = text.unicodeScalars.count
            guard count >= 1 else { return "must not be empty" }
            guard count <= maximum else { return "must be at most \(maximum) characters" }
            guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return "must not contain control characters"
            }
            return nil
        }
    }

    static func oneOf(_ allowed: [String]) -> @Sendable (String) -> String? {
        { text in allowed.contains(text) ? nil : "must be one of \(allowed.joined(separator: ", "))" }
    }

    /// Map names that may have a schema: 1 to 256 of `A-Z a-z 0-9 _ . : ~ -`, starting with
    /// a letter, digit or `_`.
    static func isMapName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...256).contains(bytes.count) else { return false }
        func isWord(_ byte: UInt8) -> Bool {
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F
        }
        guard isWord(bytes[0]) else { return false }
        return bytes.allSatisfy { isWord($0) || $0 == 0x2E || $0 == 0x3A || $0 == 0x7E || $0 == 0x2D }
    }

    /// `prefix` followed by `count` lowercase base32 characters (server-generated ids).
    static func isIdentifier(_ text: String, prefix: String, count: Int) -> Bool {
        guard text.hasPrefix(prefix) else { return false }
        let rest = text.utf8.dropFirst(prefix.utf8.count)
        return rest.count == count && rest.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x32 && $0 <= 0x37) }
    }
}
