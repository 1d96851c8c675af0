import TopGunCore
import TopGunWire

/// Requests of features this server does not have (the README lists them): each is answered
/// with the reply type its client waits for, carrying an error, so no client waits forever.
public struct UnbuiltFeatureHandler: Sendable {
    public init() {}

    /// Answers `message` if it asks for a feature not built; false for any other message.
    func answer(_ message: TopGunMessage, out: SessionOutbound) -> Bool {
        switch message {
        case .search(let request):
            out.send(.searchResp(SearchResp(requestId: request.requestId, results: [], totalCount: 0, error: Unsupported.search)))
        case .searchSub(let sub):
            out.send(.searchResp(SearchResp(requestId: sub.subscriptionId, results: [], totalCount: 0, error: Unsupported.search)))
        case .searchUnsub, .hybridSearchUnsub, .hybridQueryUnsubscribe:
            break
        case .hybridSearch(let request):
            out.send(.hybridSearchResp(HybridSearchResp(requestId: request.requestId, results: [], searchTimeMs: 0, error: Unsupported.hybridSearch)))
        case .hybridSearchSub(let sub):
            out.send(.hybridSearchResp(HybridSearchResp(requestId: sub.subscriptionId, results: [], searchTimeMs: 0, error: Unsupported.hybridSearch)))
        case .vectorSearch(let request):
            out.send(.vectorSearchResp(VectorSearchResp(id: request.id, results: [], totalCandidates: 0, searchTimeMs: 0, error: Unsupported.vectorSearch)))
        case .sqlQuery(let query):
            out.send(.sqlQueryResp(SQLQueryResp(queryId: query.queryId, columns: [], rows: [], error: Unsupported.sql, code: "FEATURE_DISABLED")))
        case .entryProcess(let request):
            out.send(.entryProcessResponse(EntryProcessResponse(requestId: request.requestId, success: false, error: Unsupported.entryProcessors)))
        case .entryProcessBatch(let request):
            let results = request.keys.map { (key: $0, value: EntryProcessKeyResult(success: false, error: Unsupported.entryProcessors)) }
            out.send(.entryProcessBatchResponse(EntryProcessBatchResponse(requestId: request.requestId, results: WireDictionary(results))))
        case .registerResolver(let request):
            out.send(.registerResolverResponse(RegisterResolverResponse(requestId: request.requestId, success: false, error: Unsupported.resolvers)))
        case .unregisterResolver(let request):
            out.send(.unregisterResolverResponse(UnregisterResolverResponse(requestId: request.requestId, success: false, error: Unsupported.resolvers)))
        case .listResolvers(let request):
            out.send(.listResolversResponse(ListResolversResponse(requestId: request.requestId, resolvers: [])))
        case .hybridQuerySubscribe:
            out.send(.errorMessage(.make(.featureUnavailable, "hybrid live queries are not available on this server", details: ["feature": "hybridQuery"])))
        default:
            return false
        }
        return true
    }
}

/// The error texts of features this server does not have (the README lists them).
enum Unsupported {
    static let search = "full-text search is not available on this server"
    static let hybridSearch = "hybrid search is not available on this server"
    static let vectorSearch = "vector search is not available on this server"
    static let sql = "SQL queries are not available on this server"
    static let entryProcessors = "entry processors are not available on this server"
    static let resolvers = "conflict resolvers are not available on this server"
}
