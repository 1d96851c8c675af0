/// Small typed readers shared by the query decoders. A key holding `null` counts as absent,
/// because msgpackr writes a JavaScript `undefined` property as nil.
enum QueryDecoding {
    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    static func object(_ value: DataValue, at path: String) throws(QueryError) -> DataObject {
        guard case .object(let object) = value else { throw .wrongType(field: path, expected: "object") }
        return object
    }

    /// The value under `key`, or nil when absent or null.
    static func present(_ object: DataObject, _ key: String) -> DataValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    static func string(_ value: DataValue, at path: String) throws(QueryError) -> String {
        guard case .string(let string) = value else { throw .wrongType(field: path, expected: "string") }
        return string
    }

    static func optionalString(_ object: DataObject, _ key: String, at path: String) throws(QueryError) -> String? {
        guard let value = present(object, key) else { return nil }
        return try string(value, at: join(path, key))
    }

    /// Any numeric case holding a whole number (msgpackr sends large integers as float64).
    static func wholeNumber(_ value: DataValue, at path: String) throws(QueryError) -> Int {
        switch value {
        case .int(let i):
            return Int(i)
        case .uint(let u):
            return u > UInt64(Int.max) ? Int.max : Int(u)
        case .double(let d):
            guard d.isFinite, d.rounded(.towardZero) == d else {
                throw .invalidValue(field: path, reason: "must be a whole number")
            }
            // Clamp instead of trapping on absurd values such as 1e300.
            if d >= 9.2e18 { return Int.max }
            if d <= -9.2e18 { return Int.min }
            return Int(d)
        default:
            throw .wrongType(field: path, expected: "number")
        }
    }

    static func optionalWholeNumber(_ object: DataObject, _ key: String, at path: String) throws(QueryError) -> Int? {
        guard let value = present(object, key) else { return nil }
        return try wholeNumber(value, at: join(path, key))
    }

    static func stringArray(_ value: DataValue, at path: String) throws(QueryError) -> [String] {
        guard case .array(let elements) = value else { throw .wrongType(field: path, expected: "array of strings") }
        var result: [String] = []
        result.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            result.append(try string(element, at: "\(path)[\(index)]"))
        }
        return result
    }
}
