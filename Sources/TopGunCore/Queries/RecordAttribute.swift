/// Finds the value an attribute name refers to in a record, the same way for filters,
/// sorting and cursors.
enum RecordAttribute {
    /// Names that mean "the record key" when the value has no field of that name.
    static let keyNames: Set<String> = ["_key", "key"]

    /// A field literally named `path` wins; otherwise a dotted path is followed through nested
    /// objects. `_key`/`key` fall back to the record key (`key`, when known).
    static func resolve(_ path: String, key: String?, value: DataValue) -> DataValue? {
        if case .object(let object) = value {
            if let direct = object[path] { return direct }
            if path.contains("."), let nested = value.value(atPath: path) { return nested }
        }
        if let key, keyNames.contains(path) { return .string(key) }
        return nil
    }
}
