import TopGunCore

/// Options of a `VECTOR_SEARCH`.
public struct VectorSearchOptions: WireField, Equatable, Sendable {
    public var includeValue: Bool?
    public var includeVectors: Bool?
    public var minScore: Double?
    /// A predicate tree, kept as it arrived.
    public var filter: DataValue?

    public init(includeValue: Bool? = nil, includeVectors: Bool? = nil, minScore: Double? = nil, filter: DataValue? = nil) {
        self.includeValue = includeValue
        self.includeVectors = includeVectors
        self.minScore = minScore
        self.filter = filter
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        includeValue = try f.optional("includeValue")
        includeVectors = try f.optional("includeVectors")
        minScore = try f.optional("minScore")
        filter = try f.optional("filter")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("includeValue", includeValue)
        f.append("includeVectors", includeVectors)
        f.append("minScore", minScore)
        f.append("filter", filter)
        return .object(f)
    }
}

/// One hit of a vector search.
public struct VectorSearchResult: WireField, Equatable, Sendable {
    public var key: String
    public var score: Double
    public var value: DataValue?
    public var vector: WireBinary?

    public init(key: String, score: Double, value: DataValue? = nil, vector: WireBinary? = nil) {
        self.key = key
        self.score = score
        self.value = value
        self.vector = vector
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        score = try f.required("score")
        self.value = try f.optional("value")
        vector = try f.optional("vector")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("score", score)
        f.append("value", value)
        f.append("vector", vector)
        return .object(f)
    }
}

/// `VECTOR_SEARCH` (client → server): nearest neighbours of `queryVector` in a vector index.
public struct VectorSearch: MessageBody {
    public static let type = "VECTOR_SEARCH"
    public static let envelope = MessageEnvelope.payload
    public var id: String
    public var mapName: String
    public var indexName: String?
    /// Little-endian f32s; the real client sends a string-indexed map (see `WireBinary`).
    public var queryVector: WireBinary
    public var k: Int64
    public var efSearch: Int64?
    public var options: VectorSearchOptions?

    public init(
        id: String, mapName: String, indexName: String? = nil, queryVector: WireBinary, k: Int64,
        efSearch: Int64? = nil, options: VectorSearchOptions? = nil
    ) {
        self.id = id
        self.mapName = mapName
        self.indexName = indexName
        self.queryVector = queryVector
        self.k = k
        self.efSearch = efSearch
        self.options = options
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        id = try f.required("id")
        mapName = try f.required("mapName")
        indexName = try f.optional("indexName")
        queryVector = try f.required("queryVector")
        k = try f.required("k")
        efSearch = try f.optional("efSearch")
        options = try f.optional("options")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("id", id)
        f.append("mapName", mapName)
        f.append("indexName", indexName)
        f.append("queryVector", queryVector)
        f.append("k", k)
        f.append("efSearch", efSearch)
        f.append("options", options)
        return f
    }
}

/// `VECTOR_SEARCH_RESP` (server → client): the hits of a `VECTOR_SEARCH`.
public struct VectorSearchResp: MessageBody {
    public static let type = "VECTOR_SEARCH_RESP"
    public static let envelope = MessageEnvelope.payload
    public var id: String
    public var results: [VectorSearchResult]
    public var totalCandidates: Int64
    public var searchTimeMs: Double
    public var error: String?

    public init(id: String, results: [VectorSearchResult], totalCandidates: Int64, searchTimeMs: Double, error: String? = nil) {
        self.id = id
        self.results = results
        self.totalCandidates = totalCandidates
        self.searchTimeMs = searchTimeMs
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        id = try f.required("id")
        results = try f.required("results")
        totalCandidates = try f.required("totalCandidates")
        searchTimeMs = try f.required("searchTimeMs")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("id", id)
        f.append("results", results)
        f.append("totalCandidates", totalCandidates)
        f.append("searchTimeMs", searchTimeMs)
        f.append("error", error)
        return f
    }
}
