import TopGunCore

/// One hit exchanged between cluster members (distributed search and subscriptions).
public struct ClusterSearchResult: WireField, Hashable, Sendable {
    public var key: String
    public var value: DataValue
    public var score: Double?
    public var matchedTerms: [String]?

    public init(key: String, value: DataValue, score: Double? = nil, matchedTerms: [String]? = nil) {
        self.key = key
        self.value = value
        self.score = score
        self.matchedTerms = matchedTerms
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        self.value = f.anyValue("value")
        score = try f.optional("score")
        matchedTerms = try f.optional("matchedTerms")
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

/// What a distributed subscription watches.
public enum ClusterSubscriptionType: String, Sendable, WireStringEnum {
    case search = "SEARCH"
    case query = "QUERY"
}

/// `CLUSTER_SUB_REGISTER` (server → server): the coordinator registers a distributed live
/// subscription on a member.
public struct ClusterSubRegister: MessageBody {
    public static let type = "CLUSTER_SUB_REGISTER"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var coordinatorNodeId: String
    public var mapName: String
    /// Wire key `type` (inside the payload).
    public var subscriptionType: ClusterSubscriptionType
    public var searchQuery: String?
    public var searchOptions: SearchOptions?
    public var queryPredicate: DataValue?
    public var querySort: DataValue?

    public init(
        subscriptionId: String, coordinatorNodeId: String, mapName: String, subscriptionType: ClusterSubscriptionType,
        searchQuery: String? = nil, searchOptions: SearchOptions? = nil, queryPredicate: DataValue? = nil,
        querySort: DataValue? = nil
    ) {
        self.subscriptionId = subscriptionId
        self.coordinatorNodeId = coordinatorNodeId
        self.mapName = mapName
        self.subscriptionType = subscriptionType
        self.searchQuery = searchQuery
        self.searchOptions = searchOptions
        self.queryPredicate = queryPredicate
        self.querySort = querySort
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        coordinatorNodeId = try f.required("coordinatorNodeId")
        mapName = try f.required("mapName")
        subscriptionType = try f.required("type")
        searchQuery = try f.optional("searchQuery")
        searchOptions = try f.optional("searchOptions")
        queryPredicate = try f.optional("queryPredicate")
        querySort = try f.optional("querySort")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("coordinatorNodeId", coordinatorNodeId)
        f.append("mapName", mapName)
        f.append("type", subscriptionType)
        f.append("searchQuery", searchQuery)
        f.append("searchOptions", searchOptions)
        f.append("queryPredicate", queryPredicate)
        f.append("querySort", querySort)
        return f
    }
}

/// `CLUSTER_SUB_ACK` (server → server): a member accepted (or refused) a distributed
/// subscription, with its initial hits.
public struct ClusterSubAck: MessageBody {
    public static let type = "CLUSTER_SUB_ACK"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var nodeId: String
    public var success: Bool
    public var error: String?
    public var initialResults: [ClusterSearchResult]?
    public var totalHits: Int64?

    public init(
        subscriptionId: String, nodeId: String, success: Bool, error: String? = nil,
        initialResults: [ClusterSearchResult]? = nil, totalHits: Int64? = nil
    ) {
        self.subscriptionId = subscriptionId
        self.nodeId = nodeId
        self.success = success
        self.error = error
        self.initialResults = initialResults
        self.totalHits = totalHits
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        nodeId = try f.required("nodeId")
        success = try f.required("success")
        error = try f.optional("error")
        initialResults = try f.optional("initialResults")
        totalHits = try f.optional("totalHits")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("nodeId", nodeId)
        f.append("success", success)
        f.append("error", error)
        f.append("initialResults", initialResults)
        f.append("totalHits", totalHits)
        return f
    }
}

/// `CLUSTER_SUB_UPDATE` (server → server): a member reports a change to a distributed
/// subscription's results.
public struct ClusterSubUpdate: MessageBody {
    public static let type = "CLUSTER_SUB_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var sourceNodeId: String
    public var key: String
    public var value: DataValue
    public var score: Double?
    public var matchedTerms: [String]?
    public var changeType: ChangeType
    /// Ms since the epoch.
    public var timestamp: Int64

    public init(
        subscriptionId: String, sourceNodeId: String, key: String, value: DataValue, score: Double? = nil,
        matchedTerms: [String]? = nil, changeType: ChangeType, timestamp: Int64
    ) {
        self.subscriptionId = subscriptionId
        self.sourceNodeId = sourceNodeId
        self.key = key
        self.value = value
        self.score = score
        self.matchedTerms = matchedTerms
        self.changeType = changeType
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        sourceNodeId = try f.required("sourceNodeId")
        key = try f.required("key")
        value = f.anyValue("value")
        score = try f.optional("score")
        matchedTerms = try f.optional("matchedTerms")
        changeType = try f.required("changeType")
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("sourceNodeId", sourceNodeId)
        f.append("key", key)
        f.append("value", value)
        f.append("score", score)
        f.append("matchedTerms", matchedTerms)
        f.append("changeType", changeType)
        f.append("timestamp", timestamp)
        return f
    }
}

/// `CLUSTER_SUB_UNREGISTER` (server → server): ends a distributed subscription on a member.
public struct ClusterSubUnregister: MessageBody {
    public static let type = "CLUSTER_SUB_UNREGISTER"
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

/// `CLUSTER_SEARCH_REQ` (server → server): the coordinator asks a member for its local hits.
public struct ClusterSearchReq: MessageBody {
    public static let type = "CLUSTER_SEARCH_REQ"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var mapName: String
    public var query: String
    public var options: SearchOptions
    public var timeoutMs: Int64?

    public init(requestId: String, mapName: String, query: String, options: SearchOptions, timeoutMs: Int64? = nil) {
        self.requestId = requestId
        self.mapName = mapName
        self.query = query
        self.options = options
        self.timeoutMs = timeoutMs
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        query = try f.required("query")
        options = try f.required("options")
        timeoutMs = try f.optional("timeoutMs")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("query", query)
        f.append("options", options)
        f.append("timeoutMs", timeoutMs)
        return f
    }
}

/// `CLUSTER_SEARCH_RESP` (server → server): a member's local hits for a `CLUSTER_SEARCH_REQ`.
public struct ClusterSearchResp: MessageBody {
    public static let type = "CLUSTER_SEARCH_RESP"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var nodeId: String
    public var results: [ClusterSearchResult]
    public var totalHits: Int64
    public var executionTimeMs: Double
    public var error: String?

    public init(
        requestId: String, nodeId: String, results: [ClusterSearchResult], totalHits: Int64, executionTimeMs: Double,
        error: String? = nil
    ) {
        self.requestId = requestId
        self.nodeId = nodeId
        self.results = results
        self.totalHits = totalHits
        self.executionTimeMs = executionTimeMs
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        nodeId = try f.required("nodeId")
        results = try f.required("results")
        totalHits = try f.required("totalHits")
        executionTimeMs = try f.required("executionTimeMs")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("nodeId", nodeId)
        f.append("results", results)
        f.append("totalHits", totalHits)
        f.append("executionTimeMs", executionTimeMs)
        f.append("error", error)
        return f
    }
}

/// `CLUSTER_SEARCH_SUBSCRIBE` (server → server): registers a live search on a member.
public struct ClusterSearchSubscribe: MessageBody {
    public static let type = "CLUSTER_SEARCH_SUBSCRIBE"
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

/// `CLUSTER_SEARCH_UNSUBSCRIBE` (server → server): ends a live search on a member.
public struct ClusterSearchUnsubscribe: MessageBody {
    public static let type = "CLUSTER_SEARCH_UNSUBSCRIBE"
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

/// `CLUSTER_SEARCH_UPDATE` (server → server): a member reports a change to a live search.
public struct ClusterSearchUpdate: MessageBody {
    public static let type = "CLUSTER_SEARCH_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var nodeId: String
    public var key: String
    public var value: DataValue
    public var score: Double
    public var matchedTerms: [String]?
    public var changeType: ChangeType

    public init(
        subscriptionId: String, nodeId: String, key: String, value: DataValue, score: Double,
        matchedTerms: [String]? = nil, changeType: ChangeType
    ) {
        self.subscriptionId = subscriptionId
        self.nodeId = nodeId
        self.key = key
        self.value = value
        self.score = score
        self.matchedTerms = matchedTerms
        self.changeType = changeType
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        nodeId = try f.required("nodeId")
        key = try f.required("key")
        value = f.anyValue("value")
        score = try f.required("score")
        matchedTerms = try f.optional("matchedTerms")
        changeType = try f.required("changeType")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("nodeId", nodeId)
        f.append("key", key)
        f.append("value", value)
        f.append("score", score)
        f.append("matchedTerms", matchedTerms)
        f.append("changeType", changeType)
        return f
    }
}
