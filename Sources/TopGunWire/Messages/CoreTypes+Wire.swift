import TopGunCore

extension Timestamp: WireField {
    /// `{millis, counter, nodeId}`; millis and counter accept int or whole float.
    public init(wire value: DataValue) throws(WireDecodingError) {
        let object = try DataObject(wire: value)
        self.init(
            millis: try object.required("millis"),
            counter: try object.required("counter"),
            nodeId: try object.required("nodeId")
        )
    }

    public var wireValue: DataValue {
        .object(DataObject(fields: [
            .init(key: "millis", value: .int(millis)),
            .init(key: "counter", value: .int(counter)),
            .init(key: "nodeId", value: .string(nodeId)),
        ]))
    }
}

extension LWWRecord: WireField {
    /// `{value, timestamp, ttlMs?}`; `value: nil` (or absent) is a tombstone.
    public init(wire value: DataValue) throws(WireDecodingError) {
        let object = try DataObject(wire: value)
        // Not `flatMap { $0.isNull ? nil : $0 }`: DataValue is ExpressibleByNilLiteral, so
        // that `nil` would become `.null` and a tombstone would read as a live record.
        var recordValue = object["value"]
        if recordValue?.isNull == true { recordValue = nil }
        self.init(
            value: recordValue,
            timestamp: try object.required("timestamp"),
            ttlMs: try object.optional("ttlMs")
        )
    }

    public var wireValue: DataValue {
        var object = DataObject()
        object.fields.reserveCapacity(3)
        object.append("value", value ?? .null)
        object.append("timestamp", timestamp.wireValue)
        object.append("ttlMs", ttlMs)
        return .object(object)
    }
}

extension ORMapRecord: WireField {
    /// `{value, timestamp, tag, ttlMs?}`.
    public init(wire value: DataValue) throws(WireDecodingError) {
        let object = try DataObject(wire: value)
        self.init(
            value: object["value"] ?? .null,
            timestamp: try object.required("timestamp"),
            tag: try object.required("tag"),
            ttlMs: try object.optional("ttlMs")
        )
    }

    public var wireValue: DataValue {
        var object = DataObject()
        object.append("value", value)
        object.append("timestamp", timestamp.wireValue)
        object.append("tag", .string(tag))
        object.append("ttlMs", ttlMs)
        return .object(object)
    }
}

extension ORMapEntry: WireField {
    /// `{key, records, tombstones}`.
    public init(wire value: DataValue) throws(WireDecodingError) {
        let object = try DataObject(wire: value)
        self.init(
            key: try object.required("key"),
            records: try object.optional("records") ?? [],
            tombstones: try object.optional("tombstones") ?? []
        )
    }

    public var wireValue: DataValue {
        var object = DataObject()
        object.append("key", .string(key))
        object.append("records", records.wireValue)
        object.append("tombstones", tombstones.wireValue)
        return .object(object)
    }
}

extension Query: WireField {
    /// The query map of `QUERY_SUB`; a malformed query is an `invalidValue` error whose field
    /// path points into the query (e.g. `query.sort[0].direction`).
    public init(wire value: DataValue) throws(WireDecodingError) {
        do {
            self = try Query(from: value)
        } catch {
            throw WireDecodingError(.invalidValue(error.message), field: error.field.isEmpty ? nil : error.field)
        }
    }

    public var wireValue: DataValue { dataValue }
}
