/// One record of a query result: the map key and its value (or, for grouped queries, the
/// group key and its aggregate row).
public struct QueryRecord: Sendable, Equatable {
    public var key: String
    public var value: DataValue

    public init(key: String, value: DataValue) {
        self.key = key
        self.value = value
    }

    /// `{key, value}`, the element shape of `QUERY_RESP.results`.
    public var dataValue: DataValue {
        .object(["key": .string(key), "value": value])
    }
}
