/// The one JSON reader (RFC 8259) of the product: wire text frames and HTTP sync bodies, map
/// schemas, token headers and claims, and control-plane request bodies are all read by it.
///
/// Stricter than Foundation and `JSON.parse` on purpose: it refuses repeated member names
/// (which one wins is a guess), invalid UTF-8, lone surrogates in `\u` escapes, numbers beyond
/// a double, leading zeros, a byte order mark and trailing data, and it stops at a nesting
/// depth and an input size instead of exhausting the stack or memory.
public struct JSONReader: Sendable {
    public struct Limits: Sendable {
        public var maxBytes: Int
        public var maxDepth: Int

        public init(maxBytes: Int = 16 * 1024 * 1024, maxDepth: Int = 128) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
        }
    }

    /// Why some bytes are not (acceptable) JSON, and where.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// Not JSON: what is wrong.
            case syntax(String)
            /// A string is not UTF-8.
            case invalidUTF8
            /// An object names a member twice.
            case repeatedMember(String)
            /// Nested deeper than the limit.
            case tooDeep(limit: Int)
            /// Longer than the limit, in bytes.
            case tooLarge(limit: Int)
        }

        public var kind: Kind
        /// The byte offset where the problem was found.
        public var offset: Int

        public init(_ kind: Kind, offset: Int) {
            self.kind = kind
            self.offset = offset
        }

        /// A member name as an error message shows it: quoted, at most 64 characters (a
        /// name is the sender's text; a long one is not echoed back whole).
        public static func shown(_ name: String) -> String {
            let cut = name.unicodeScalars.count > 64 ? String(String.UnicodeScalarView(name.unicodeScalars.prefix(64))) + "…" : name
            return JSONValue.quoted(cut)
        }

        public var description: String {
            switch kind {
            case .syntax(let message): "\(message) at byte \(offset)"
            case .invalidUTF8: "invalid UTF-8 in a string at byte \(offset)"
            case .repeatedMember(let name): "duplicate member name \(Self.shown(name)) at byte \(offset)"
            case .tooDeep(let limit): "nested deeper than \(limit) levels"
            case .tooLarge(let limit): "longer than \(limit) bytes"
            }
        }
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Reads `bytes` as exactly one JSON value.
    public func read(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        guard bytes.count <= limits.maxBytes else { throw Failure(.tooLarge(limit: limits.maxBytes), offset: 0) }
        return try bytes.withUnsafeBufferPointer { buffer throws(Failure) in
            var parser = Parser(bytes: buffer, maxDepth: limits.maxDepth)
            parser.skipWhitespace()
            let value = try parser.parseValue()
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw parser.fail("unexpected data after the JSON value") }
            return value
        }
    }

    public func read(_ text: String) throws(Failure) -> JSONValue {
        try read(Array(text.utf8))
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0
        var depth = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func fail(_ message: String, at offset: Int? = nil) -> Failure { Failure(.syntax(message), offset: offset ?? index) }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func parseValue() throws(Failure) -> JSONValue {
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject()
            case UInt8(ascii: "["): return try parseArray()
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw fail("unexpected character")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw fail("unexpected end of input") }
            let start = literal.utf8Start
            for offset in 0..<count where bytes[index + offset] != start[offset] {
                throw fail("unexpected character")
            }
            index += count
        }

        mutating func enter() throws(Failure) {
            depth += 1
            if depth > maxDepth { throw Failure(.tooDeep(limit: maxDepth), offset: index) }
        }

        mutating func parseObject() throws(Failure) -> JSONValue {
            try enter()
            index += 1  // {
            var members: [JSONObject.Member] = []
            var seen = Set<NameBytes>()
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                depth -= 1
                return .object(JSONObject(uniqueMembers: members))
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                let nameOffset = index
                let name = try parseString()
                // By UTF-8 bytes: "é" and "e\u{301}" are two names (and hashing the bytes, not
                // the String, keeps many such names from sharing one bucket).
                guard seen.insert(NameBytes(name)).inserted else { throw Failure(.repeatedMember(name), offset: nameOffset) }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                index += 1
                skipWhitespace()
                let value = try parseValue()
                members.append(JSONObject.Member(name: name, value: value))
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of input") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; break }
                throw fail("expected ',' or '}'")
            }
            depth -= 1
            return .object(JSONObject(uniqueMembers: members))
        }

        mutating func parseArray() throws(Failure) -> JSONValue {
            try enter()
            index += 1  // [
            var values: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                depth -= 1
                return .array(values)
            }
            while true {
                skipWhitespace()
                values.append(try parseValue())
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of input") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; break }
                throw fail("expected ',' or ']'")
            }
            depth -= 1
            return .array(values)
        }

        mutating func parseString() throws(Failure) -> String {
            let start = index
            index += 1  // "
            // Most strings have no escapes: validate the bytes in place.
            var scan = index
            while scan < bytes.count, bytes[scan] != UInt8(ascii: "\""), bytes[scan] != UInt8(ascii: "\\"), bytes[scan] >= 0x20 { scan += 1 }
            if scan < bytes.count, bytes[scan] == UInt8(ascii: "\"") {
                guard let string = String(validating: UnsafeBufferPointer(rebasing: bytes[index..<scan]), as: UTF8.self) else {
                    throw Failure(.invalidUTF8, offset: start)
                }
                index = scan + 1
                return string
            }
            var utf8 = Array(bytes[index..<scan])
            index = scan
            while true {
                guard index < bytes.count else { throw fail("unterminated string", at: start) }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let string = String(validating: utf8, as: UTF8.self) else { throw Failure(.invalidUTF8, offset: start) }
                    return string
                case UInt8(ascii: "\\"):
                    index += 1
                    try parseEscape(into: &utf8)
                case 0..<0x20:
                    throw fail("unescaped control character in a string")
                default:
                    utf8.append(byte)
                    index += 1
                }
            }
        }

        mutating func parseEscape(into utf8: inout [UInt8]) throws(Failure) {
            guard index < bytes.count else { throw fail("unterminated escape") }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): utf8.append(0x22)
            case UInt8(ascii: "\\"): utf8.append(0x5C)
            case UInt8(ascii: "/"): utf8.append(0x2F)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate in a \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate in a \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("lone surrogate in a \\u escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                utf8.append(contentsOf: String(scalar).utf8)
            default:
                throw fail("invalid escape")
            }
        }

        mutating func parseHex4() throws(Failure) -> UInt32 {
            guard bytes.count - index >= 4 else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail("invalid \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func parseNumber() throws(Failure) -> JSONNumber {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
                if index < bytes.count, isDigit(bytes[index]) { throw fail("leading zero in a number", at: start) }
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            // The bytes are ASCII digits and signs only, so this decoding cannot fail.
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if isInteger {
                if let exact = Int64(text) { return .int(exact) }
                if let exact = UInt64(text) { return .uint(exact) }
            }
            guard let value = Double(text), value.isFinite else { throw fail("number out of range", at: start) }
            return .double(value)
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    }
}

/// A member name hashed and compared by its UTF-8 bytes.
private struct NameBytes: Hashable {
    let bytes: [UInt8]
    init(_ name: String) { bytes = Array(name.utf8) }
}
