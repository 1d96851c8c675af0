import TopGunCore

/// The hot path: `OP_BATCH` read straight from the bytes into typed ops, without the
/// intermediate tree the general decoder builds. Returns nil for anything unusual; the
/// caller then runs the general decoder, which accepts every valid frame and names the
/// field of every error. The two must agree, which the tests check on every fixture.
enum OpBatchFastDecoder {
    /// Decodes `{type: "OP_BATCH", payload: {...}}` when `type` comes first, as clients
    /// write it.
    static func decode(_ cursor: inout Cursor) -> OpBatch? {
        guard let count = cursor.readMapCount(), count >= 2,
            let key = cursor.readRawString(), keyEquals(key, "type"),
            let type = cursor.readRawString(), keyEquals(type, "OP_BATCH")
        else { return nil }
        var batch: OpBatch?
        for _ in 1..<count {
            guard let key = cursor.readRawString() else { return nil }
            if keyEquals(key, "payload") {
                guard batch == nil, let payload = payload(&cursor) else { return nil }
                batch = payload
            } else if !cursor.skipValue(depth: 1) {
                return nil
            }
        }
        return batch
    }

    static func payload(_ cursor: inout Cursor) -> OpBatch? {
        guard let count = cursor.readMapCount() else { return nil }
        var ops: [ClientOp]?
        var writeConcern: WriteConcern?
        var timeout: Double?
        var nodeIdCache = ""
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if cursor.readNilIfPresent() { continue }
            if keyEquals(key, "ops") {
                guard let n = cursor.readArrayCount() else { return nil }
                var list: [ClientOp] = []
                list.reserveCapacity(n)
                for _ in 0..<n {
                    guard let op = clientOp(&cursor, nodeIdCache: &nodeIdCache) else { return nil }
                    list.append(op)
                }
                ops = list
            } else if keyEquals(key, "writeConcern") {
                guard let text = cursor.readStringValue(), let concern = WriteConcern(rawValue: text) else { return nil }
                writeConcern = concern
            } else if keyEquals(key, "timeout") {
                guard let value = cursor.readNumber() else { return nil }
                timeout = value
            } else if !cursor.skipValue(depth: 2) {
                return nil
            }
        }
        guard let ops else { return nil }
        return OpBatch(ops: ops, writeConcern: writeConcern, timeout: timeout)
    }

    static func clientOp(_ cursor: inout Cursor, nodeIdCache: inout String) -> ClientOp? {
        guard let count = cursor.readMapCount() else { return nil }
        var op = ClientOp(mapName: "", key: "")
        var hasMapName = false
        var hasKey = false
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if cursor.readNilIfPresent() { continue }
            switch key.count {
            case 2 where keyEquals(key, "id"):
                guard let value = cursor.readStringValue() else { return nil }
                op.id = value
            case 7 where keyEquals(key, "mapName"):
                guard let value = cursor.readStringValue() else { return nil }
                op.mapName = value
                hasMapName = true
            case 3 where keyEquals(key, "key"):
                guard let value = cursor.readStringValue() else { return nil }
                op.key = value
                hasKey = true
            case 6 where keyEquals(key, "opType"):
                guard let value = cursor.readStringValue() else { return nil }
                op.opType = value
            case 6 where keyEquals(key, "record"):
                guard let value = record(&cursor, nodeIdCache: &nodeIdCache) else { return nil }
                op.record = value
            case 9 where keyEquals(key, "timestamp"):
                guard let value = timestamp(&cursor, nodeIdCache: &nodeIdCache) else { return nil }
                op.timestamp = value
            case 6 where keyEquals(key, "synced"):
                guard let value = cursor.readBoolValue() else { return nil }
                op.synced = value
            case 5 where keyEquals(key, "orTag"):
                guard let value = cursor.readStringValue() else { return nil }
                op.orTag = value
            case 8 where keyEquals(key, "orRecord"):
                guard let value = try? ORMapRecord(wire: cursor.readValue(depth: 4)) else { return nil }
                op.orRecord = value
            case 12 where keyEquals(key, "writeConcern"):
                guard let text = cursor.readStringValue(), let concern = WriteConcern(rawValue: text) else { return nil }
                op.writeConcern = concern
            case 7 where keyEquals(key, "timeout"):
                guard let value = cursor.readNumber() else { return nil }
                op.timeout = value
            default:
                guard cursor.skipValue(depth: 4) else { return nil }
            }
        }
        guard hasMapName && hasKey else { return nil }
        return op
    }

    static func record(_ cursor: inout Cursor, nodeIdCache: inout String) -> LWWRecord? {
        guard let count = cursor.readMapCount() else { return nil }
        var value: DataValue?
        var timestamp: Timestamp?
        var ttlMs: Double?
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if keyEquals(key, "value") {
                guard let decoded = try? cursor.readValue(depth: 5) else { return nil }
                // Spelled out: a bare `nil` here would become the literal `DataValue.null`.
                value = decoded.isNull ? DataValue?.none : .some(decoded)
            } else if cursor.readNilIfPresent() {
                continue
            } else if keyEquals(key, "timestamp") {
                guard let decoded = self.timestamp(&cursor, nodeIdCache: &nodeIdCache) else { return nil }
                timestamp = decoded
            } else if keyEquals(key, "ttlMs") {
                guard let decoded = cursor.readNumber() else { return nil }
                ttlMs = decoded
            } else if !cursor.skipValue(depth: 5) {
                return nil
            }
        }
        guard let timestamp else { return nil }
        return LWWRecord(value: value, timestamp: timestamp, ttlMs: ttlMs)
    }

    static func timestamp(_ cursor: inout Cursor, nodeIdCache: inout String) -> Timestamp? {
        guard let count = cursor.readMapCount() else { return nil }
        var millis: Int64?
        var counter: Int64?
        var nodeId: String?
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if keyEquals(key, "millis") {
                millis = cursor.readInteger()
                guard millis != nil else { return nil }
            } else if keyEquals(key, "counter") {
                counter = cursor.readInteger()
                guard counter != nil else { return nil }
            } else if keyEquals(key, "nodeId") {
                nodeId = cursor.readRepeatedString(cache: &nodeIdCache)
                guard nodeId != nil else { return nil }
            } else if !cursor.skipValue(depth: 6) {
                return nil
            }
        }
        guard let millis, let counter, let nodeId else { return nil }
        return Timestamp(millis: millis, counter: counter, nodeId: nodeId)
    }
}
