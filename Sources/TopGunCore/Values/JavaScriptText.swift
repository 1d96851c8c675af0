/// Text forms of values exactly as JavaScript writes them, for hashes that the client
/// computes over strings (Merkle entry hashes) and must match bit for bit.
public enum JavaScriptText {
    /// `String(number)` in JavaScript (Number::toString): shortest round-trip digits,
    /// plain notation for exponents in (-7, 21), exponent notation outside.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        if value == 0 { return "0" }  // also -0, which JavaScript prints as "0"
        if value < 0 { return "-" + number(-value) }
        if value.rounded(.towardZero) == value, value < 9.007_199_254_740_992e15 {
            return String(Int64(value))
        }
        // Swift's description already holds the shortest round-trip digits; re-lay them out.
        let (digits, exponent) = shortestDigits(value)
        let k = digits.count
        let n = exponent  // value = 0.d1d2…dk × 10^n
        if k <= n && n <= 21 {
            return digits + String(repeating: "0", count: n - k)
        }
        if 0 < n && n <= 21 {
            let index = digits.index(digits.startIndex, offsetBy: n)
            return String(digits[..<index]) + "." + String(digits[index...])
        }
        if -6 < n && n <= 0 {
            return "0." + String(repeating: "0", count: -n) + digits
        }
        let e = n - 1
        let sign = e < 0 ? "-" : "+"
        let mantissa = k == 1 ? digits : String(digits.first!) + "." + String(digits.dropFirst())
        return mantissa + "e" + sign + String(abs(e))
    }

    /// The significant digits (no leading or trailing zeros) and the exponent n such that
    /// value = 0.digits × 10^n, read from Swift's shortest representation.
    static func shortestDigits(_ value: Double) -> (String, Int) {
        let text = "\(value)"  // e.g. "1.5e+20", "123.45", "1e-07", "0.001"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...].replacingPlus()) ?? 0
        }
        var integerPart = mantissa
        var fractionPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            integerPart = mantissa[..<dot]
            fractionPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(integerPart) + String(fractionPart)
        var n = integerPart.count + exponent
        // Strip leading zeros (each one moves the decimal point) and trailing zeros.
        while digits.first == "0" && digits.count > 1 {
            digits.removeFirst()
            n -= 1
        }
        while digits.last == "0" && digits.count > 1 { digits.removeLast() }
        return (digits, n)
    }

    /// `JSON.stringify(string)`: quoted, with JSON escapes.
    public static func jsonString(_ string: String) -> String {
        JSONValue.quoted(string)
    }

    /// `String(value)` for a primitive (strings unquoted).
    public static func primitive(_ value: DataValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .uint(let u): return number(Double(u))
        case .double(let d): return number(d)
        case .string(let s): return s
        case .binary(let bytes): return bytes.map(String.init).joined(separator: ",")  // Uint8Array#toString
        case .array, .object: return json(value, allowList: nil)
        }
    }

    /// `JSON.stringify(value, allowList)`: with an allow-list, object properties are written
    /// in the list's order and only if listed, at every depth (JavaScript's replacer-array
    /// rule); array elements are always written.
    public static func json(_ value: DataValue, allowList: [String]?) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .uint(let u): return number(Double(u))
        case .double(let d): return d.isFinite ? number(d) : "null"
        case .string(let s): return jsonString(s)
        case .binary(let bytes):
            // A Uint8Array stringifies as an object keyed by index.
            var object = DataObject()
            for (index, byte) in bytes.enumerated() { object.append(String(index), .int(Int64(byte))) }
            return json(.object(object), allowList: allowList)
        case .array(let elements):
            return "[" + elements.map { json($0, allowList: allowList) }.joined(separator: ",") + "]"
        case .object(let object):
            var parts: [String] = []
            if let allowList {
                for key in allowList {
                    if let field = object[key] { parts.append(jsonString(key) + ":" + json(field, allowList: allowList)) }
                }
            } else {
                for field in object.fields { parts.append(jsonString(field.key) + ":" + json(field.value, allowList: nil)) }
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
    }
}

extension String {
    /// JavaScript's default `Array#sort` order: by UTF-16 code units.
    @inlinable
    public static func utf16Precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf16.lexicographicallyPrecedes(rhs.utf16)
    }
}

extension Substring {
    fileprivate func replacingPlus() -> Substring {
        first == "+" ? dropFirst() : self
    }
}
