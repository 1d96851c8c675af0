import TopGunCore

/// A map the HTTP client wants deltas for, with the last server sync timestamp it saw.
public struct HTTPSyncMap: WireField, Hashable, Sendable {
    public var mapName: String
    /// `{0, 0, ""}` when never synced.
    public var lastSyncTimestamp: Timestamp

    public init(mapName: String, lastSyncTimestamp: Timestamp) {
        self.mapName = mapName
        self.lastSyncTimestamp = lastSyncTimestamp
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        mapName = try f.required("mapName")
        lastSyncTimestamp = try f.required("lastSyncTimestamp")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("lastSyncTimestamp", lastSyncTimestamp)
        return .object(f)
    }
}

/// A one-shot query in an HTTP sync request.
public struct HTTPSyncQuery: WireField, Hashable, Sendable {
    public var queryId: String
    public var mapName: String
    /// The query's `where`, kept as it arrived.
    public var filter: DataValue
    public var limit: Int64?
    public var offset: Int64?
    public var cursor: String?

    public init(
        queryId: String, mapName: String, filter: DataValue, limit: Int64? = nil, offset: Int64? = nil,
        cursor: String? = nil
    ) {
        self.queryId = queryId
        self.mapName = mapName
        self.filter = filter
        self.limit = limit
        self.offset = offset
        self.cursor = cursor
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        queryId = try f.required("queryId")
        mapName = try f.required("mapName")
        filter = f.anyValue("filter")
        limit = try f.optional("limit")
        offset = try f.optional("offset")
        cursor = try f.optional("cursor")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("mapName", mapName)
        f.append("filter", filter)
        f.append("limit", limit)
        f.append("offset", offset)
        f.append("cursor", cursor)
        return .object(f)
    }
}

/// A one-shot search in an HTTP sync request (defined; the client never sends one).
public struct HTTPSyncSearch: WireField, Equatable, Sendable {
    public var searchId: String
    public var mapName: String
    public var query: String
    public var options: SearchOptions?

    public init(searchId: String, mapName: String, query: String, options: SearchOptions? = nil) {
        self.searchId = searchId
        self.mapName = mapName
        self.query = query
        self.options = options
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        searchId = try f.required("searchId")
        mapName = try f.required("mapName")
        query = try f.required("query")
        options = try f.optional("options")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("searchId", searchId)
        f.append("mapName", mapName)
        f.append("query", query)
        f.append("options", options)
        return .object(f)
    }
}

/// The body of `POST /sync` (client → server, protocol.md §7.1); it has no `type`.
public struct HTTPSyncRequest: MessageBody {
    public static let type = ""
    public static let envelope = MessageEnvelope.flat
    public var clientId: String
    public var clientHlc: Timestamp
    public var operations: [ClientOp]?
    public var syncMaps: [HTTPSyncMap]?
    public var queries: [HTTPSyncQuery]?
    public var searches: [HTTPSyncSearch]?

    public init(
        clientId: String, clientHlc: Timestamp, operations: [ClientOp]? = nil, syncMaps: [HTTPSyncMap]? = nil,
        queries: [HTTPSyncQuery]? = nil, searches: [HTTPSyncSearch]? = nil
    ) {
        self.clientId = clientId
        self.clientHlc = clientHlc
        self.operations = operations
        self.syncMaps = syncMaps
        self.queries = queries
        self.searches = searches
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        clientId = try f.required("clientId")
        clientHlc = try f.required("clientHlc")
        operations = try f.optional("operations")
        syncMaps = try f.optional("syncMaps")
        queries = try f.optional("queries")
        searches = try f.optional("searches")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("clientId", clientId)
        f.append("clientHlc", clientHlc)
        f.append("operations", operations)
        f.append("syncMaps", syncMaps)
        f.append("queries", queries)
        f.append("searches", searches)
        return f
    }
}

/// The acknowledgement of the ops of an HTTP sync request.
public struct HTTPSyncAck: WireField, Hashable, Sendable {
    public var lastId: String
    public var results: [OpResult]?

    public init(lastId: String, results: [OpResult]? = nil) {
        self.lastId = lastId
        self.results = results
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        lastId = try f.required("lastId")
        results = try f.optional("results")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("lastId", lastId)
        f.append("results", results)
        return .object(f)
    }
}

/// What happened to a key in an HTTP sync delta.
public enum HTTPSyncDeltaEventType: String, Sendable, WireStringEnum {
    case put = "PUT"
    case remove = "REMOVE"
}

/// One changed key in an HTTP sync delta.
public struct HTTPSyncDeltaRecord: WireField, Hashable, Sendable {
    public var key: String
    public var record: LWWRecord
    public var eventType: HTTPSyncDeltaEventType

    public init(key: String, record: LWWRecord, eventType: HTTPSyncDeltaEventType) {
        self.key = key
        self.record = record
        self.eventType = eventType
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        record = try f.required("record")
        eventType = try f.required("eventType")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("record", record)
        f.append("eventType", eventType)
        return .object(f)
    }
}

/// The records of one map changed since the client's last sync, and the timestamp to send next.
public struct HTTPSyncDelta: WireField, Hashable, Sendable {
    public var mapName: String
    public var records: [HTTPSyncDeltaRecord]
    public var serverSyncTimestamp: Timestamp

    public init(mapName: String, records: [HTTPSyncDeltaRecord], serverSyncTimestamp: Timestamp) {
        self.mapName = mapName
        self.records = records
        self.serverSyncTimestamp = serverSyncTimestamp
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        mapName = try f.required("mapName")
        records = try f.required("records")
        serverSyncTimestamp = try f.required("serverSyncTimestamp")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("records", records)
        f.append("serverSyncTimestamp", serverSyncTimestamp)
        return .object(f)
    }
}

/// The result of one query of an HTTP sync request.
public struct HTTPSyncQueryResult: WireField, Hashable, Sendable {
    public var queryId: String
    public var results: [DataValue]
    public var hasMore: Bool?
    public var nextCursor: String?

    public init(queryId: String, results: [DataValue], hasMore: Bool? = nil, nextCursor: String? = nil) {
        self.queryId = queryId
        self.results = results
        self.hasMore = hasMore
        self.nextCursor = nextCursor
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        queryId = try f.required("queryId")
        results = try f.required("results")
        hasMore = try f.optional("hasMore")
        nextCursor = try f.optional("nextCursor")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("results", results)
        f.append("hasMore", hasMore)
        f.append("nextCursor", nextCursor)
        return .object(f)
    }
}

/// The result of one search of an HTTP sync request.
public struct HTTPSyncSearchResult: WireField, Hashable, Sendable {
    public var searchId: String
    public var results: [DataValue]
    public var totalCount: Int64?

    public init(searchId: String, results: [DataValue], totalCount: Int64? = nil) {
        self.searchId = searchId
        self.results = results
        self.totalCount = totalCount
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        searchId = try f.required("searchId")
        results = try f.required("results")
        totalCount = try f.optional("totalCount")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("searchId", searchId)
        f.append("results", results)
        f.append("totalCount", totalCount)
        return .object(f)
    }
}

/// A failure of one item (op, map, query, search) of an HTTP sync request.
public struct HTTPSyncError: WireField, Hashable, Sendable {
    public var code: Int64
    public var message: String
    public var context: String?

    public init(code: Int64, message: String, context: String? = nil) {
        self.code = code
        self.message = message
        self.context = context
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        code = try f.required("code")
        message = try f.required("message")
        context = try f.optional("context")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("code", code)
        f.append("message", message)
        f.append("context", context)
        return .object(f)
    }
}

/// The body of the reply to `POST /sync` (server → client, protocol.md §7.1); it has no `type`.
public struct HTTPSyncResponse: MessageBody {
    public static let type = ""
    public static let envelope = MessageEnvelope.flat
    public var serverHlc: Timestamp
    public var ack: HTTPSyncAck?
    public var deltas: [HTTPSyncDelta]?
    public var queryResults: [HTTPSyncQueryResult]?
    public var searchResults: [HTTPSyncSearchResult]?
    public var errors: [HTTPSyncError]?

    public init(
        serverHlc: Timestamp, ack: HTTPSyncAck? = nil, deltas: [HTTPSyncDelta]? = nil,
        queryResults: [HTTPSyncQueryResult]? = nil, searchResults: [HTTPSyncSearchResult]? = nil,
        errors: [HTTPSyncError]? = nil
    ) {
        self.serverHlc = serverHlc
        self.ack = ack
        self.deltas = deltas
        self.queryResults = queryResults
        self.searchResults = searchResults
        self.errors = errors
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        serverHlc = try f.required("serverHlc")
        ack = try f.optional("ack")
        deltas = try f.optional("deltas")
        queryResults = try f.optional("queryResults")
        searchResults = try f.optional("searchResults")
        errors = try f.optional("errors")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("serverHlc", serverHlc)
        f.append("ack", ack)
        f.append("deltas", deltas)
        f.append("queryResults", queryResults)
        f.append("searchResults", searchResults)
        f.append("errors", errors)
        return f
    }
}
