import TopGunCore

/// A retrieval method of a hybrid search.
public enum SearchMethod: String, Sendable, WireStringEnum {
    case exact
    case fullText
    case semantic
}

/// One hit of a hybrid search: the fused score and the score per method.
public struct HybridSearchResult: WireField, Equatable, Sendable {
    public var key: String
    public var score: Double
    /// Keyed by method name (`exact`, `fullText`, `semantic`).
    public var methodScores: WireDictionary<Double>
    public var value: DataValue?

    public init(key: String, score: Double, methodScores: WireDictionary<Double>, value: DataValue? = nil) {
        self.key = key
        self.score = score
        self.methodScores = methodScores
        self.value = value
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        score = try f.required("score")
        methodScores = try f.required("methodScores")
        self.value = try f.optional("value")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("score", score)
        f.append("methodScores", methodScores)
        f.append("value", value)
        return .object(f)
    }
}

/// `HYBRID_SEARCH` (client → server): a one-shot search fusing exact, full-text and
/// semantic results.
public struct HybridSearch: MessageBody {
    public static let type = "HYBRID_SEARCH"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var mapName: String
    public var queryText: String
    public var methods: [SearchMethod]
    public var k: Int64
    /// Little-endian f32s; the real client sends a string-indexed map (see `WireBinary`).
    public var queryVector: WireBinary?
    public var predicate: DataValue?
    public var includeValue: Bool?
    public var minScore: Double?

    public init(
        requestId: String, mapName: String, queryText: String, methods: [SearchMethod], k: Int64,
        queryVector: WireBinary? = nil, predicate: DataValue? = nil, includeValue: Bool? = nil, minScore: Double? = nil
    ) {
        self.requestId = requestId
        self.mapName = mapName
        self.queryText = queryText
        self.methods = methods
        self.k = k
        self.queryVector = queryVector
        self.predicate = predicate
        self.includeValue = includeValue
        self.minScore = minScore
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        queryText = try f.required("queryText")
        methods = try f.required("methods")
        k = try f.required("k")
        queryVector = try f.optional("queryVector")
        predicate = try f.optional("predicate")
        includeValue = try f.optional("includeValue")
        minScore = try f.optional("minScore")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("queryText", queryText)
        f.append("methods", methods)
        f.append("k", k)
        f.append("queryVector", queryVector)
        f.append("predicate", predicate)
        f.append("includeValue", includeValue)
        f.append("minScore", minScore)
        return f
    }
}

/// `HYBRID_SEARCH_RESP` (server → client): the fused hits of a `HYBRID_SEARCH`.
public struct HybridSearchResp: MessageBody {
    public static let type = "HYBRID_SEARCH_RESP"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var results: [HybridSearchResult]
    public var searchTimeMs: Double
    public var error: String?

    public init(requestId: String, results: [HybridSearchResult], searchTimeMs: Double, error: String? = nil) {
        self.requestId = requestId
        self.results = results
        self.searchTimeMs = searchTimeMs
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        results = try f.required("results")
        searchTimeMs = try f.required("searchTimeMs")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("results", results)
        f.append("searchTimeMs", searchTimeMs)
        f.append("error", error)
        return f
    }
}

/// `HYBRID_SEARCH_SUB` (client → server): subscribes to a live hybrid search.
public struct HybridSearchSub: MessageBody {
    public static let type = "HYBRID_SEARCH_SUB"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var mapName: String
    public var queryText: String
    public var methods: [SearchMethod]
    public var k: Int64
    public var queryVector: WireBinary?
    public var predicate: DataValue?
    public var includeValue: Bool?
    public var minScore: Double?

    public init(
        subscriptionId: String, mapName: String, queryText: String, methods: [SearchMethod], k: Int64,
        queryVector: WireBinary? = nil, predicate: DataValue? = nil, includeValue: Bool? = nil, minScore: Double? = nil
    ) {
        self.subscriptionId = subscriptionId
        self.mapName = mapName
        self.queryText = queryText
        self.methods = methods
        self.k = k
        self.queryVector = queryVector
        self.predicate = predicate
        self.includeValue = includeValue
        self.minScore = minScore
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        mapName = try f.required("mapName")
        queryText = try f.required("queryText")
        methods = try f.required("methods")
        k = try f.required("k")
        queryVector = try f.optional("queryVector")
        predicate = try f.optional("predicate")
        includeValue = try f.optional("includeValue")
        minScore = try f.optional("minScore")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("mapName", mapName)
        f.append("queryText", queryText)
        f.append("methods", methods)
        f.append("k", k)
        f.append("queryVector", queryVector)
        f.append("predicate", predicate)
        f.append("includeValue", includeValue)
        f.append("minScore", minScore)
        return f
    }
}

/// `HYBRID_SEARCH_UPDATE` (server → client): one hit of a live hybrid search changed.
public struct HybridSearchUpdate: MessageBody {
    public static let type = "HYBRID_SEARCH_UPDATE"
    public static let envelope = MessageEnvelope.payload
    public var subscriptionId: String
    public var key: String
    public var score: Double
    public var methodScores: WireDictionary<Double>
    public var value: DataValue?
    public var changeType: ChangeType

    public init(
        subscriptionId: String, key: String, score: Double, methodScores: WireDictionary<Double>,
        value: DataValue? = nil, changeType: ChangeType
    ) {
        self.subscriptionId = subscriptionId
        self.key = key
        self.score = score
        self.methodScores = methodScores
        self.value = value
        self.changeType = changeType
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        subscriptionId = try f.required("subscriptionId")
        key = try f.required("key")
        score = try f.required("score")
        methodScores = try f.required("methodScores")
        value = try f.optional("value")
        changeType = try f.required("changeType")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("subscriptionId", subscriptionId)
        f.append("key", key)
        f.append("score", score)
        f.append("methodScores", methodScores)
        f.append("value", value)
        f.append("changeType", changeType)
        return f
    }
}

/// `HYBRID_SEARCH_UNSUB` (client → server): ends a live hybrid search.
public struct HybridSearchUnsub: MessageBody {
    public static let type = "HYBRID_SEARCH_UNSUB"
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
