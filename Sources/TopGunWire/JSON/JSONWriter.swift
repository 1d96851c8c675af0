import TopGunCore

/// Prints a `DataValue` as JSON in the conventions of the protocol fixtures: binary as
/// `{"type":"Buffer","data":[bytes]}` (what Node's `Buffer.toJSON` gives), whole doubles as
/// integers, non-finite numbers as `null` (as `JSON.stringify` does), key order kept.
public enum JSONWriter {
    public static func string(_ value: DataValue, pretty: Bool = false) -> String {
        var out = ""
        write(value, into: &out, indent: pretty ? 0 : nil)
        return out
    }

    /// The JavaScript text of a number: integers without a fraction, others in the
    /// shortest form that reads back to the same double.
    public static func numberText(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(.towardZero), abs(value) < 1e21 {
            if let exact = Int64(exactly: value) { return String(exact) }
            if let exact = UInt64(exactly: value) { return String(exact) }
        }
        return "\(value)"
    }

    static func write(_ value: DataValue, into out: inout String, indent: Int?) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += numberText(d)
        case .string(let s): writeString(s, into: &out)
        case .binary(let bytes):
            let buffer: DataValue = ["type": "Buffer", "data": .array(bytes.map { .int(Int64($0)) })]
            write(buffer, into: &out, indent: indent)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                newline(&out, indent.map { $0 + 1 })
                write(element, into: &out, indent: indent.map { $0 + 1 })
            }
            newline(&out, indent)
            out += "]"
        case .object(let object):
            if object.isEmpty { out += "{}"; return }
            out += "{"
            for (index, field) in object.fields.enumerated() {
                if index > 0 { out += "," }
                newline(&out, indent.map { $0 + 1 })
                writeString(field.key, into: &out)
                out += indent == nil ? ":" : ": "
                write(field.value, into: &out, indent: indent.map { $0 + 1 })
            }
            newline(&out, indent)
            out += "}"
        }
    }

    static func newline(_ out: inout String, _ indent: Int?) {
        guard let indent else { return }
        out += "\n"
        out += String(repeating: "  ", count: indent)
    }

    static func writeString(_ s: String, into out: inout String) {
        out += JavaScriptText.jsonString(s)
    }
}
