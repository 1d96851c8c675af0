/// The strict RFC 8259 reader of map schemas, offered to anything else that must refuse what
/// Foundation tolerates: duplicate member names, lone surrogates, a byte order mark, numbers
/// beyond a double, nesting deeper than 128 levels (the control plane checks request bodies
/// with it).
public enum StrictJSON {
    /// What makes `bytes` not strict JSON, or nil when they are.
    public static func problem(in bytes: [UInt8]) -> String? {
        do {
            _ = try SchemaJSONParser.parse(bytes)
            return nil
        } catch {
            switch error {
            case .syntax(let message, let offset): return "\(message) at byte \(offset)"
            case .duplicateMember(let name, let offset): return "duplicate member name \"\(name)\" at byte \(offset)"
            case .tooDeep: return "nested deeper than \(SchemaJSONParser.maxDepth) levels"
            }
        }
    }
}
