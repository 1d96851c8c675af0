/// A compact JSON-like text of a value, for group keys of non-string values. Object keys
/// are sorted so that equal values print alike.
enum DataValueText {
    static func render(_ value: DataValue) -> String {
        var text = ""
        write(value, to: &text)
        return text
    }

    private static func write(_ value: DataValue, to text: inout String) {
        switch value {
        case .null: text += "null"
        case .bool(let b): text += b ? "true" : "false"
        case .int(let i): text += String(i)
        case .uint(let u): text += String(u)
        case .double(let d):
            if let whole = value.int64Value {
                text += String(whole)
            } else if d.isNaN {
                text += "NaN"
            } else if d.isInfinite {
                text += d < 0 ? "-Infinity" : "Infinity"
            } else {
                text += String(d)
            }
        case .string(let s): quote(s, to: &text)
        case .binary(let bytes): quote(Base64URL.encode(bytes), to: &text)
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += "," }
                write(element, to: &text)
            }
            text += "]"
        case .object(let object):
            text += "{"
            let fields = object.fields.sorted { ValueOrdering.compareStrings($0.key, $1.key) == .less }
            for (index, field) in fields.enumerated() {
                if index > 0 { text += "," }
                quote(field.key, to: &text)
                text += ":"
                write(field.value, to: &text)
            }
            text += "}"
        }
    }

    private static func quote(_ s: String, to text: inout String) {
        text += "\""
        for character in s {
            if character == "\"" || character == "\\" { text += "\\" }
            text.append(character)
        }
        text += "\""
    }
}
