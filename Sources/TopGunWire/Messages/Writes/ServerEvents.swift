import TopGunCore

/// What a `SERVER_EVENT` reports (protocol.md §6.5.2).
public enum ServerEventType: String, Sendable, WireStringEnum {
    case put = "PUT"
    case remove = "REMOVE"
    case orAdd = "OR_ADD"
    case orRemove = "OR_REMOVE"
}

/// One change to a map as servers push it: the payload of `SERVER_EVENT` and each element
/// of `SERVER_BATCH_EVENT.events`.
public struct ServerEventPayload: WireField, Hashable, Sendable {
    public var mapName: String
    public var eventType: ServerEventType
    public var key: String
    /// LWW maps: the full record (a tombstone for deletes); the client needs it.
    public var record: LWWRecord?
    /// OR maps, `OR_ADD`.
    public var orRecord: ORMapRecord?
    /// OR maps, `OR_REMOVE`.
    public var orTag: String?

    public init(
        mapName: String, eventType: ServerEventType, key: String, record: LWWRecord? = nil,
        orRecord: ORMapRecord? = nil, orTag: String? = nil
    ) {
        self.mapName = mapName
        self.eventType = eventType
        self.key = key
        self.record = record
        self.orRecord = orRecord
        self.orTag = orTag
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        mapName = try f.required("mapName")
        eventType = try f.required("eventType")
        key = try f.required("key")
        record = try f.optional("record")
        orRecord = try f.optional("orRecord")
        orTag = try f.optional("orTag")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("eventType", eventType)
        f.append("key", key)
        f.append("record", record)
        f.append("orRecord", orRecord)
        f.append("orTag", orTag)
        return .object(f)
    }
}

/// `SERVER_EVENT` (server → client): a change made by another connection, for a map the
/// receiver has a live query on.
///
/// The event is under `payload`, and the legacy server adds a top-level `timestamp` (its HLC)
/// beside it so that clients advance their clocks (protocol.md §2.6, §14.6). To keep that
/// timestamp, this body is read from the whole message (envelope `.flat`) with the payload
/// as its `payload` field; the bytes on the wire are those of a payload message.
public struct ServerEvent: MessageBody {
    public static let type = "SERVER_EVENT"
    public static let envelope = MessageEnvelope.flat
    public var payload: ServerEventPayload
    /// The server's HLC, beside `payload`.
    public var timestamp: Timestamp?

    public init(payload: ServerEventPayload, timestamp: Timestamp? = nil) {
        self.payload = payload
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        payload = try f.required("payload")
        timestamp = try f.optional("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("payload", payload)
        f.append("timestamp", timestamp)
        return f
    }
}

/// `SERVER_BATCH_EVENT` (server → client): several `SERVER_EVENT` payloads at once.
///
/// Like `ServerEvent`, read from the whole message so the legacy top-level `timestamp` is kept;
/// the fields of the payload are `payload.events`.
public struct ServerBatchEvent: MessageBody {
    public static let type = "SERVER_BATCH_EVENT"
    public static let envelope = MessageEnvelope.flat
    public var events: [ServerEventPayload]
    /// The server's HLC, beside `payload`.
    public var timestamp: Timestamp?

    public init(events: [ServerEventPayload], timestamp: Timestamp? = nil) {
        self.events = events
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        events = try f.nested("payload") { (p: DataObject) throws(WireDecodingError) in try p.required("events") }
        timestamp = try f.optional("timestamp")
    }

    public var wireFields: DataObject {
        var payload = DataObject()
        payload.append("events", events)
        var f = DataObject()
        f.append("payload", payload)
        f.append("timestamp", timestamp)
        return f
    }
}

/// `MERGE_REJECTED` (server → client): a conflict resolver refused the client's write.
public struct MergeRejected: MessageBody {
    public static let type = "MERGE_REJECTED"
    public static let envelope = MessageEnvelope.flat
    public var mapName: String
    public var key: String
    public var attemptedValue: DataValue
    public var reason: String
    public var timestamp: Timestamp

    public init(mapName: String, key: String, attemptedValue: DataValue, reason: String, timestamp: Timestamp) {
        self.mapName = mapName
        self.key = key
        self.attemptedValue = attemptedValue
        self.reason = reason
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        key = try f.required("key")
        attemptedValue = f.anyValue("attemptedValue")
        reason = try f.required("reason")
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("key", key)
        f.append("attemptedValue", attemptedValue)
        f.append("reason", reason)
        f.append("timestamp", timestamp)
        return f
    }
}

/// `BATCH` (server → client, legacy): several messages packed into one frame; `data` is
/// `[u32 LE count]([u32 LE length][msgpack])…` (protocol.md §6.4), kept here as opaque bytes.
public struct Batch: MessageBody {
    public static let type = "BATCH"
    public static let envelope = MessageEnvelope.flat
    public var count: Int64
    public var data: WireBinary

    public init(count: Int64, data: WireBinary) {
        self.count = count
        self.data = data
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        count = try f.required("count")
        data = try f.required("data")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("count", count)
        f.append("data", data)
        return f
    }
}
