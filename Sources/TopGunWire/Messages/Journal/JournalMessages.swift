import TopGunCore

/// The kind of change a journal event records.
public enum JournalEventType: String, Sendable, WireStringEnum {
    case put = "PUT"
    case update = "UPDATE"
    case delete = "DELETE"
}

/// One entry of the event journal (in `JOURNAL_EVENT.event` and `JOURNAL_READ_RESPONSE.events`).
public struct JournalEvent: WireField, Hashable, Sendable {
    /// A decimal sequence number as a string; kept as any string.
    public var sequence: String
    /// Wire key `type`.
    public var type: JournalEventType
    public var mapName: String
    public var key: String
    public var value: DataValue?
    public var previousValue: DataValue?
    public var timestamp: Timestamp
    public var nodeId: String
    public var metadata: DataObject?

    public init(
        sequence: String, type: JournalEventType, mapName: String, key: String, value: DataValue? = nil,
        previousValue: DataValue? = nil, timestamp: Timestamp, nodeId: String, metadata: DataObject? = nil
    ) {
        self.sequence = sequence
        self.type = type
        self.mapName = mapName
        self.key = key
        self.value = value
        self.previousValue = previousValue
        self.timestamp = timestamp
        self.nodeId = nodeId
        self.metadata = metadata
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        sequence = try f.required("sequence")
        type = try f.required("type")
        mapName = try f.required("mapName")
        key = try f.required("key")
        self.value = try f.optional("value")
        previousValue = try f.optional("previousValue")
        timestamp = try f.required("timestamp")
        nodeId = try f.required("nodeId")
        metadata = try f.optional("metadata")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("sequence", sequence)
        f.append("type", type)
        f.append("mapName", mapName)
        f.append("key", key)
        f.append("value", value)
        f.append("previousValue", previousValue)
        f.append("timestamp", timestamp)
        f.append("nodeId", nodeId)
        f.append("metadata", metadata)
        return .object(f)
    }
}

/// `JOURNAL_SUBSCRIBE` (client → server): streams journal events (of one map, of some types).
public struct JournalSubscribe: MessageBody {
    public static let type = "JOURNAL_SUBSCRIBE"
    public static let envelope = MessageEnvelope.flat
    /// Also the subscription id.
    public var requestId: String
    public var fromSequence: String?
    public var mapName: String?
    public var types: [JournalEventType]?

    public init(requestId: String, fromSequence: String? = nil, mapName: String? = nil, types: [JournalEventType]? = nil) {
        self.requestId = requestId
        self.fromSequence = fromSequence
        self.mapName = mapName
        self.types = types
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        fromSequence = try f.optional("fromSequence")
        mapName = try f.optional("mapName")
        types = try f.optional("types")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("fromSequence", fromSequence)
        f.append("mapName", mapName)
        f.append("types", types)
        return f
    }
}

/// `JOURNAL_UNSUBSCRIBE` (client → server): ends a journal subscription.
public struct JournalUnsubscribe: MessageBody {
    public static let type = "JOURNAL_UNSUBSCRIBE"
    public static let envelope = MessageEnvelope.flat
    /// The subscribe's `requestId`.
    public var subscriptionId: String

    public init(subscriptionId: String) { self.subscriptionId = subscriptionId }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        return f
    }
}

/// `JOURNAL_EVENT` (server → client): one journal event for a subscriber; the event's fields
/// are under `event` (protocol.md §6.4), modelled as a flat message with that one field.
public struct JournalEventMessage: MessageBody {
    public static let type = "JOURNAL_EVENT"
    public static let envelope = MessageEnvelope.flat
    public var event: JournalEvent

    public init(event: JournalEvent) { self.event = event }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        event = try f.required("event")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("event", event)
        return f
    }
}

/// `JOURNAL_READ` (client → server): reads journal events from a sequence number on.
public struct JournalRead: MessageBody {
    public static let type = "JOURNAL_READ"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var fromSequence: String
    /// Client default 100.
    public var limit: Int64?
    public var mapName: String?

    public init(requestId: String, fromSequence: String, limit: Int64? = nil, mapName: String? = nil) {
        self.requestId = requestId
        self.fromSequence = fromSequence
        self.limit = limit
        self.mapName = mapName
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        fromSequence = try f.required("fromSequence")
        limit = try f.optional("limit")
        mapName = try f.optional("mapName")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("fromSequence", fromSequence)
        f.append("limit", limit)
        f.append("mapName", mapName)
        return f
    }
}

/// `JOURNAL_READ_RESPONSE` (server → client): the events a `JOURNAL_READ` asked for.
public struct JournalReadResponse: MessageBody {
    public static let type = "JOURNAL_READ_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var events: [JournalEvent]
    public var hasMore: Bool

    public init(requestId: String, events: [JournalEvent], hasMore: Bool) {
        self.requestId = requestId
        self.events = events
        self.hasMore = hasMore
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        events = try f.required("events")
        hasMore = try f.required("hasMore")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("events", events)
        f.append("hasMore", hasMore)
        return f
    }
}
