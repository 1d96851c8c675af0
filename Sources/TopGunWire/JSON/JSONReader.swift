import TopGunCore

/// Parses JSON (RFC 8259) into a `DataValue`, for text frames and `topgun wire encode`.
///
/// Integers that fit Int64 stay integers (so `1700000000000` is not turned into a float);
/// `{"type":"Buffer","data":[bytes]}` becomes binary, the inverse of `JSONWriter`. Depth and
/// size are bounded like MessagePack input.
public struct JSONReader {
    public let limits: MessagePackLimits

    public init(limits: MessagePackLimits = .default) {
        self.limits = limits
    }

    public func decode(_ text: String) throws(WireDecodingError) -> DataValue {
        try decode(Array(text.utf8))
    }

    public func decode(_ bytes: [UInt8]) throws(WireDecodingError) -> DataValue {
        guard bytes.count <= limits.maxInputBytes else {
            throw WireDecodingError(.sizeLimitExceeded(limit: limits.maxInputBytes))
        }
        var parser = Parser(bytes: bytes, maxDepth: limits.maxDepth)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected text after the value") }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var position = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ why: String) -> WireDecodingError {
            WireDecodingError(.invalidJSON(why), offset: position)
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws(WireDecodingError) {
            for byte in literal.utf8 {
                guard position < bytes.count, bytes[position] == byte else { throw error("expected '\(literal)'") }
                position += 1
            }
        }

        mutating func parseValue(depth: Int) throws(WireDecodingError) -> DataValue {
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws(WireDecodingError) -> DataValue {
            guard depth < maxDepth else { throw WireDecodingError(.depthLimitExceeded(limit: maxDepth), offset: position) }
            position += 1
            var object = DataObject()
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                let value = try parseValue(depth: depth + 1)
                object[key] = value  // a repeated key keeps the last value, as in JSON.parse
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; break }
                throw error("expected ',' or '}'")
            }
            // Node's Buffer.toJSON form stands for binary.
            if object.count == 2, object["type"] == .string("Buffer"), case .array(let items)? = object["data"] {
                var binary: [UInt8] = []
                binary.reserveCapacity(items.count)
                for item in items {
                    guard let byte = item.int64Value, (0...255).contains(byte) else { return .object(object) }
                    binary.append(UInt8(byte))
                }
                return .binary(binary)
            }
            return .object(object)
        }

        mutating func parseArray(depth: Int) throws(WireDecodingError) -> DataValue {
            guard depth < maxDepth else { throw WireDecodingError(.depthLimitExceeded(limit: maxDepth), offset: position) }
            position += 1
            var elements: [DataValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; break }
                throw error("expected ',' or ']'")
            }
            return .array(elements)
        }

        mutating func parseHex4() throws(WireDecodingError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[position]
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func parseString() throws(WireDecodingError) -> String {
            position += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let c = bytes[position]
                position += 1
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw error("control character in string") }
                if c != UInt8(ascii: "\\") { utf8.append(c); continue }
                guard position < bytes.count else { throw error("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5c)
                case UInt8(ascii: "/"): utf8.append(0x2f)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0c)
                case UInt8(ascii: "n"): utf8.append(0x0a)
                case UInt8(ascii: "r"): utf8.append(0x0d)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalarValue = try parseHex4()
                    if (0xd800..<0xdc00).contains(scalarValue) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate")
                        }
                        position += 2
                        let low = try parseHex4()
                        guard (0xdc00..<0xe000).contains(low) else { throw error("unpaired surrogate") }
                        scalarValue = 0x10000 + ((scalarValue - 0xd800) << 10) + (low - 0xdc00)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { throw error("unpaired surrogate") }
                    utf8.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw error("invalid escape")
                }
            }
            guard let string = String(validating: utf8, as: UTF8.self) else {
                throw WireDecodingError(.invalidUTF8, offset: position)
            }
            return string
        }

        mutating func parseNumber() throws(WireDecodingError) -> DataValue {
            let start = position
            var isInteger = true
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
                throw error("invalid number")
            }
            while position < bytes.count {
                let c = bytes[position]
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) {
                    position += 1
                } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                    isInteger = false
                    position += 1
                } else {
                    break
                }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if isInteger {
                if let value = Int64(text) { return .int(value) }
                if let value = UInt64(text) { return .uint(value) }
            }
            guard let value = Double(text), value.isFinite else { throw error("invalid number '\(text)'") }
            return .double(value)
        }
    }
}
