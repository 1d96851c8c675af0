import TopGunCore

/// Options of a full-text search (`SEARCH`, `SEARCH_SUB`, cluster search messages).
public struct SearchOptions: WireField, Equatable, Sendable {
    public var limit: Int64?
    public var minScore: Double?
    /// Per-field score multipliers.
    public var boost: WireDictionary<Double>?
    /// Cluster search only.
    public var includeMatchedTerms: Bool?
    /// Cluster search paging (legacy schema).
    public var afterScore: Double?
    public var afterKey: String?

    public init(
        limit: Int64? = nil, minScore: Double? = nil, boost: WireDictionary<Double>? = nil,
        includeMatchedTerms: Bool? = nil, afterScore: Double? = nil, afterKey: String? = nil
    ) {
        self.limit = limit
        self.minScore = minScore
        self.boost = boost
        self.includeMatchedTerms = includeMatchedTerms
        self.afterScore = afterScore
        self.afterKey = afterKey
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        limit = try f.optional("limit")
        minScore = try f.optional("minScore")
        boost = try f.optional("boost")
        includeMatchedTerms = try f.optional("includeMatchedTerms")
        afterScore = try f.optional("afterScore")
        afterKey = try f.optional("afterKey")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("limit", limit)
        f.append("minScore", minScore)
        f.append("boost", boost)
        f.append("includeMatchedTerms", includeMatchedTerms)
        f.append("afterScore", afterScore)
        f.append("afterKey", afterKey)
        return .object(f)
    }
}

/// One hit of a full-text search (`SEARCH_RESP.results`).
public struct SearchResult: WireField, Hashable, Sendable {
    public var key: String
    public var value: DataValue
    public var score: Double
    public var matchedTerms: [String]

    public init(key: String, value: DataValue, score: Double, matchedTerms: [String]) {
        self.key = key
        self.value = value
        self.score = score
        self.matchedTerms = matchedTerms
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        self.value = f.anyValue("value")
        score = try f.required("score")
        matchedTerms = try f.required("matchedTerms")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("value", value)
        f.append("score", score)
        f.append("matchedTerms", matchedTerms)
        return .object(f)
    }
}

/// `SEARCH` (client → server): a one-shot BM25 full-text search.
public struct Search: MessageBody {
    public static let type = "SEARCH"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var mapName: String
    public var query: String
    public var options: SearchOptions?

    public init(requestId: String, mapName: String, query: String, options: SearchOptions? = nil) {
        self.requestId = requestId
        self.mapName = mapName
        self.query = query
        self.options = options
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        query = try f.required("query")
        options = try f.optional("options")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("query", query)
        f.append("options", options)
        return f
    }
}

/// `SEARCH_RESP` (server → client): the hits of a `SEARCH`, or the initial hits of a
/// `SEARCH_SUB` (then `requestId` is the subscription id).
public struct SearchResp: MessageBody {
    public static let type = "SEARCH_RESP"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var results: [SearchResult]
    public var totalCount: Int64
    public var error: String?

    public init(requestId: String, results: [SearchResult], totalCount: Int64, error: String? = nil) {
        self.requestId = requestId
        self.results = results
        self.totalCount = totalCount
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        results = try f.required("results")
        totalCount = try f.required("totalCount")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("results", results)
        f.append("totalCount", totalCount)
        f.append("error", error)
        return f
    }
}

/// `SEARCH_SUB` (client → server): subscribes to a live full-text search.
public struct SearchSub: MessageBody {
    public static let type = "SEARCH_SUB"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var mapName: String
    public var query: String
    public var options: SearchOptions?

    public init(subscriptionId: String, mapName: String, query: String, options: SearchOptions? = nil) {
        self.subscriptionId = subscriptionId
        self.mapName = mapName
        self.query = query
        self.options = options
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        mapName = try f.required("mapName")
        query = try f.required("query")
        options = try f.optional("options")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("mapName", mapName)
        f.append("query", query)
        f.append("options", options)
        return f
    }
}

/// `SEARCH_UPDATE` (server → client): one hit of a live search entered, changed or left.
public struct SearchUpdate: MessageBody {
    public static let type = "SEARCH_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var key: String
    public var value: DataValue
    public var score: Double
    public var matchedTerms: [String]
    public var changeType: ChangeType

    public init(
        subscriptionId: String, key: String, value: DataValue, score: Double, matchedTerms: [String],
        changeType: ChangeType
    ) {
        self.subscriptionId = subscriptionId
        self.key = key
        self.value = value
        self.score = score
        self.matchedTerms = matchedTerms
        self.changeType = changeType
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        key = try f.required("key")
        value = f.anyValue("value")
        score = try f.required("score")
        matchedTerms = try f.required("matchedTerms")
        changeType = try f.required("changeType")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("key", key)
        f.append("value", value)
        f.append("score", score)
        f.append("matchedTerms", matchedTerms)
        f.append("changeType", changeType)
        return f
    }
}

/// `SEARCH_UNSUB` (client → server): ends a live search.
public struct SearchUnsub: MessageBody {
    public static let type = "SEARCH_UNSUB"
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
