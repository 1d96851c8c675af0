import TopGunCore

/// The hot path: `OP_BATCH` read straight from the bytes into typed ops, without the
/// intermediate tree the general decoder builds. Returns nil for anything unusual; the
/// caller then runs the general decoder, which accepts every valid frame and names the
/// field of every error. The two must agree, which the tests check on every fixture.
/// Invalid UTF-8 anywhere (ignored members and their values included) is unusual: the general
/// decoder then refuses the frame or, inside an op, that op alone (`OpByOpDecoder`).
enum OpBatchFastDecoder {
    /// Decodes `{type: "OP_BATCH", payload: {...}}` when `type` comes first, as clients
    /// write it.
    static func decode(_ cursor: inout Cursor, repeated: inout RepeatedStrings) -> OpBatch? {
        guard let count = cursor.readMapCount(), count >= 2,
            let key = cursor.readRawString(), keyEquals(key, "type"),
            let type = cursor.readRawString(), keyEquals(type, "OP_BATCH")
        else { return nil }
        var batch: OpBatch?
        for _ in 1..<count {
            guard let key = cursor.readRawString() else { return nil }
            if keyEquals(key, "payload") {
                guard batch == nil, let payload = payload(&cursor, repeated: &repeated) else { return nil }
                batch = payload
            } else if !cursor.skipIgnoredMember(name: key, depth: 1) {
                return nil
            }
        }
        return batch
    }

    /// The fewest bytes an op the fast path accepts can take: a map header, then `mapName`
    /// and `key` with their (at least one-byte) values. Bounds the room reserved for the ops
    /// by what the frame can actually hold, whatever count it declares.
    static let minimumOpBytes = 1 + (1 + 7 + 1) + (1 + 3 + 1)

    static func payload(_ cursor: inout Cursor, repeated: inout RepeatedStrings) -> OpBatch? {
        guard let count = cursor.readMapCount() else { return nil }
        var ops: [ClientOp]?
        var writeConcern: WriteConcern?
        var timeout: Double?
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if cursor.readNilIfPresent() {
                guard UTF8Text.isWellFormed(key) else { return nil }
                continue
            }
            if keyEquals(key, "ops") {
                guard let n = cursor.readArrayCount(), n <= cursor.remaining / minimumOpBytes else { return nil }
                // Each op is decoded where it will live: building it on the stack and then
                // appending would copy the whole (large) struct twice per op.
                var complete = true
                let list = [ClientOp](unsafeUninitializedCapacity: n) { buffer, initialized in
                    for index in 0..<n {
                        let slot = buffer.baseAddress! + index
                        slot.initialize(to: ClientOp(mapName: "", key: ""))
                        initialized = index + 1
                        guard clientOp(&cursor, into: slot, nodeIdCache: &repeated.nodeId) else {
                            complete = false
                            return
                        }
                    }
                }
                guard complete else { return nil }
                ops = list
            } else if keyEquals(key, "writeConcern") {
                guard let text = cursor.readStringValue(), let concern = WriteConcern(rawValue: text) else { return nil }
                writeConcern = concern
            } else if keyEquals(key, "timeout") {
                guard let value = cursor.readNumber() else { return nil }
                timeout = value
            } else if !cursor.skipIgnoredMember(name: key, depth: 2) {
                return nil
            }
        }
        guard let ops else { return nil }
        return OpBatch(ops: ops, writeConcern: writeConcern, timeout: timeout)
    }

    /// Reads one op into `op` (an initialized, empty op); false when the op is unusual.
    static func clientOp(_ cursor: inout Cursor, into op: UnsafeMutablePointer<ClientOp>, nodeIdCache: inout String) -> Bool {
        guard let count = cursor.readMapCount() else { return false }
        var hasMapName = false
        var hasKey = false
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return false }
            if cursor.readNilIfPresent() {
                guard UTF8Text.isWellFormed(key) else { return false }
                continue
            }
            switch key.count {
            case 2 where keyEquals(key, "id"):
                guard let value = cursor.readStringValue() else { return false }
                op.pointee.id = value
            case 7 where keyEquals(key, "mapName"):
                guard let value = cursor.readStringValue() else { return false }
                op.pointee.mapName = value
                hasMapName = true
            case 3 where keyEquals(key, "key"):
                guard let value = cursor.readStringValue() else { return false }
                op.pointee.key = value
                hasKey = true
            case 6 where keyEquals(key, "opType"):
                guard let value = cursor.readStringValue() else { return false }
                op.pointee.opType = value
            case 6 where keyEquals(key, "record"):
                guard let value = record(&cursor, nodeIdCache: &nodeIdCache) else { return false }
                op.pointee.record = value
            case 9 where keyEquals(key, "timestamp"):
                guard let value = timestamp(&cursor, nodeIdCache: &nodeIdCache) else { return false }
                op.pointee.timestamp = value
            case 6 where keyEquals(key, "synced"):
                guard let value = cursor.readBoolValue() else { return false }
                op.pointee.synced = value
            case 5 where keyEquals(key, "orTag"):
                guard let value = cursor.readStringValue() else { return false }
                op.pointee.orTag = value
            case 8 where keyEquals(key, "orRecord"):
                guard let value = try? ORMapRecord(wire: cursor.readValue(depth: 4)) else { return false }
                op.pointee.orRecord = value
            case 12 where keyEquals(key, "writeConcern"):
                guard let text = cursor.readStringValue(), let concern = WriteConcern(rawValue: text) else { return false }
                op.pointee.writeConcern = concern
            case 7 where keyEquals(key, "timeout"):
                guard let value = cursor.readNumber() else { return false }
                op.pointee.timeout = value
            default:
                guard cursor.skipIgnoredMember(name: key, depth: 4) else { return false }
            }
        }
        return hasMapName && hasKey
    }

    static func record(_ cursor: inout Cursor, nodeIdCache: inout String) -> LWWRecord? {
        guard let count = cursor.readMapCount() else { return nil }
        var value: RecordValue?
        var timestamp: Timestamp?
        var ttlMs: Double?
        for _ in 0..<count {
            guard let key = cursor.readRawString() else { return nil }
            if keyEquals(key, "value") {
                // Packed as it arrived when it can be: no tree of objects to build now and
                // to free when the record is replaced.
                do throws(WireDecodingError) {
                    value = try cursor.readRecordValue(depth: 5)
                } catch {
                    return nil
                }
            } else if cursor.readNilIfPresent() {
                guard UTF8Text.isWellFormed(key) else { return nil }
            } else if keyEquals(key, "timestamp") {
                guard let decoded = self.timestamp(&cursor, nodeIdCache: &nodeIdCache) else { return nil }
                timestamp = decoded
            } else if keyEquals(key, "ttlMs") {
                guard let decoded = cursor.readNumber() else { return nil }
                ttlMs = decoded
            } else if !cursor.skipIgnoredMember(name: key, depth: 5) {
                return nil
            }
        }
        guard let timestamp else { return nil }
        return LWWRecord(payload: value, timestamp: timestamp, ttlMs: ttlMs)
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
            } else if !cursor.skipIgnoredMember(name: key, depth: 6) {
                return nil
            }
        }
        guard let millis, let counter, let nodeId else { return nil }
        return Timestamp(millis: millis, counter: counter, nodeId: nodeId)
    }
}
