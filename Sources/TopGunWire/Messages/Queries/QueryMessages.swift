import TopGunCore

/// `QUERY_SUB` (client → server): subscribes to a live query on a map.
public struct QuerySub: MessageBody {
    public static let type = "QUERY_SUB"
    public static let envelope = MessageEnvelope.payload
    /// The client uses a random UUID.
    public var queryId: String
    public var mapName: String
    /// The query (`where`, `predicate`, `sort`, `limit`, `cursor`, `groupBy`,
    /// `aggregations`); other keys the client leaves in it are ignored.
    public var query: Query
    /// Field projection.
    public var fields: [String]?

    public init(queryId: String, mapName: String, query: Query, fields: [String]? = nil) {
        self.queryId = queryId
        self.mapName = mapName
        self.query = query
        self.fields = fields
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
        mapName = try f.required("mapName")
        query = try f.required("query")
        fields = try f.optional("fields")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("mapName", mapName)
        f.append("query", query)
        f.append("fields", fields)
        return f
    }
}

/// `QUERY_UNSUB` (client → server): ends a live query.
public struct QueryUnsub: MessageBody {
    public static let type = "QUERY_UNSUB"
    public static let envelope = MessageEnvelope.payload
    public var queryId: String

    public init(queryId: String) { self.queryId = queryId }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        return f
    }
}

/// `QUERY_RESP.cursorStatus` on the wire: `valid`, `expired`, `invalid` or `none`.
extension CursorStatus: WireStringEnum {}

/// One row of `QUERY_RESP.results`: a key and its (possibly projected or aggregated) value.
public struct QueryResultItem: WireField, Hashable, Sendable {
    public var key: String
    public var value: DataValue

    public init(key: String, value: DataValue) {
        self.key = key
        self.value = value
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        self.value = f.anyValue("value")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("value", value)
        return .object(f)
    }
}

/// `QUERY_RESP` (server → client): the full result set of a query (it settles the query
/// on the client), or an error asking the client to resubscribe.
public struct QueryResp: MessageBody {
    public static let type = "QUERY_RESP"
    public static let envelope = MessageEnvelope.payload
    public var queryId: String
    /// Absent in the Rust server's overflow reply; read as empty then.
    public var results: [QueryResultItem]
    public var nextCursor: String?
    public var hasMore: Bool?
    public var cursorStatus: CursorStatus?
    public var merkleRootHash: UInt32?
    /// Rust server only, with `code` (e.g. `QUERY_SNAPSHOT_OVERFLOW`).
    public var error: String?
    public var code: String?

    public init(
        queryId: String, results: [QueryResultItem], nextCursor: String? = nil, hasMore: Bool? = nil,
        cursorStatus: CursorStatus? = nil, merkleRootHash: UInt32? = nil, error: String? = nil, code: String? = nil
    ) {
        self.queryId = queryId
        self.results = results
        self.nextCursor = nextCursor
        self.hasMore = hasMore
        self.cursorStatus = cursorStatus
        self.merkleRootHash = merkleRootHash
        self.error = error
        self.code = code
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
        results = try f.optional("results") ?? []
        nextCursor = try f.optional("nextCursor")
        hasMore = try f.optional("hasMore")
        cursorStatus = try f.optional("cursorStatus")
        merkleRootHash = try f.optional("merkleRootHash")
        error = try f.optional("error")
        code = try f.optional("code")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("results", results)
        f.append("nextCursor", nextCursor)
        f.append("hasMore", hasMore)
        f.append("cursorStatus", cursorStatus)
        f.append("merkleRootHash", merkleRootHash)
        f.append("error", error)
        f.append("code", code)
        return f
    }
}

/// `QUERY_UPDATE` (server → client): one key entered, changed in, or left a live result set.
public struct QueryUpdate: MessageBody {
    public static let type = "QUERY_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var queryId: String
    public var key: String
    /// nil for `LEAVE`.
    public var value: DataValue
    public var changeType: ChangeType

    public init(queryId: String, key: String, value: DataValue, changeType: ChangeType) {
        self.queryId = queryId
        self.key = key
        self.value = value
        self.changeType = changeType
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
        key = try f.required("key")
        value = f.anyValue("value")
        changeType = try f.required("changeType")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("key", key)
        f.append("value", value)
        f.append("changeType", changeType)
        return f
    }
}

/// `QUERY_SYNC_INIT` (client → server): the stored Merkle root of a field-projected query.
public struct QuerySyncInit: MessageBody {
    public static let type = "QUERY_SYNC_INIT"
    public static let envelope = MessageEnvelope.payload
    public var queryId: String
    public var rootHash: UInt32

    public init(queryId: String, rootHash: UInt32) {
        self.queryId = queryId
        self.rootHash = rootHash
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
        rootHash = try f.required("rootHash")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("rootHash", rootHash)
        return f
    }
}

/// `HYBRID_QUERY_SUBSCRIBE` (client → server): a live query with full-text predicates (sent by
/// the client, in no schema, handled by no upstream server).
public struct HybridQuerySubscribe: MessageBody {
    public static let type = "HYBRID_QUERY_SUBSCRIBE"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var mapName: String
    public var predicate: DataValue?
    public var `where`: DataValue?
    public var sort: DataValue?
    public var limit: Int64?
    public var cursor: String?

    public init(
        subscriptionId: String, mapName: String, predicate: DataValue? = nil, where: DataValue? = nil,
        sort: DataValue? = nil, limit: Int64? = nil, cursor: String? = nil
    ) {
        self.subscriptionId = subscriptionId
        self.mapName = mapName
        self.predicate = predicate
        self.where = `where`
        self.sort = sort
        self.limit = limit
        self.cursor = cursor
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        mapName = try f.required("mapName")
        predicate = try f.optional("predicate")
        self.where = try f.optional("where")
        sort = try f.optional("sort")
        limit = try f.optional("limit")
        cursor = try f.optional("cursor")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("mapName", mapName)
        f.append("predicate", predicate)
        f.append("where", self.where)
        f.append("sort", sort)
        f.append("limit", limit)
        f.append("cursor", cursor)
        return f
    }
}

/// `HYBRID_QUERY_UNSUBSCRIBE` (client → server): ends a hybrid live query.
public struct HybridQueryUnsubscribe: MessageBody {
    public static let type = "HYBRID_QUERY_UNSUBSCRIBE"
    public static let envelope = MessageEnvelope.payload
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
