/// Keeps only some fields of a record value, for `QUERY_SUB.fields`.
public enum FieldProjection {
    /// An object holding only the named fields of `value`, in the order of `fields`.
    ///
    /// A dotted name (`address.city`) keeps that nested field inside its parents
    /// (`{address: {city: …}}`); several names under one parent merge. A field literally
    /// named with a dot is kept under its own name. Names the value lacks are skipped. A value
    /// that is not an object is returned unchanged, since it has no fields to choose from.
    public static func project(_ value: DataValue, fields: [String]) -> DataValue {
        guard case .object(let source) = value else { return value }
        var result = DataObject()
        for field in fields {
            if let direct = source[field] {
                result[field] = direct
            } else if field.contains("."), let nested = value.value(atPath: field) {
                let components = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                set(nested, at: components[...], in: &result)
            }
        }
        return .object(result)
    }

    private static func set(_ value: DataValue, at path: ArraySlice<String>, in object: inout DataObject) {
        guard let head = path.first else { return }
        let rest = path.dropFirst()
        if rest.isEmpty {
            object[head] = value
            return
        }
        var child = object[head]?.objectValue ?? DataObject()
        set(value, at: rest, in: &child)
        object[head] = .object(child)
    }
}
