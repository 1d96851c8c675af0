import TopGunCore

/// Request bodies are read once, by the product's one strict JSON reader
/// (`TopGunCore.JSONReader`), into a `JSONValue`: numbers keep whether they were integers, so
/// `1`, `true` and `1.5` stay apart, and a repeated member name is refused (which one would
/// win is a guess).
extension JSONValue {
    /// Parses `bytes` as one JSON value (UTF-8 only), refusing what strict JSON refuses.
    public static func parse(_ bytes: some Collection<UInt8>) throws(APIError) -> JSONValue {
        do {
            return try JSONReader().read(Array(bytes))
        } catch {
            throw APIError.validation(pointer: "", "the body is not valid JSON: \(error)")
        }
    }
}
