import Logging
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Tenancy
import TopGunCore
import TopGunWire

/// `POST /sync` (protocol.md §7.1): stateless sync for clients that poll. Bearer JWT, a
/// MessagePack (or JSON) body in, the same format out; the same write path as WebSocket.
public struct HTTPSyncEndpoint: Sendable {
    let configuration: DataPlaneConfiguration
    let authenticator: any Authenticator
    let policies: TenantPolicies
    let writes: WritePath
    let maps: MapDirectory
    let clocks: TenantClocks
    /// The node's wall clock.
    let clock: NodeClock
    let durability: any DurabilityPipeline
    let routing: ReadRouting
    /// On a node of a cluster: deltas and queries gathered from every owner.
    var spread: ClusterMapReads?
    let metrics: DataPlaneMetrics
    let logger: Logger

    public init(
        configuration: DataPlaneConfiguration, authenticator: any Authenticator, policies: TenantPolicies, writes: WritePath, maps: MapDirectory,
        clocks: TenantClocks, clock: NodeClock, durability: any DurabilityPipeline, routing: ReadRouting, metrics: DataPlaneMetrics, logger: Logger
    ) {
        self.routing = routing
        self.configuration = configuration
        self.authenticator = authenticator
        self.policies = policies
        self.writes = writes
        self.maps = maps
        self.clocks = clocks
        self.clock = clock
        self.durability = durability
        self.metrics = metrics
        self.logger = logger
    }

    public func handle(_ request: Request, context: some Hummingbird.RequestContext) async throws -> Response {
        let requestId = request.headers[.requestID] ?? UUIDText.random()
        guard let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("bearer ") else {
            throw ProblemDetails(.unauthorized, kind: "unauthorized", title: "Unauthorized", detail: "missing Authorization: Bearer <token>")
        }
        let token = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        let requestContext: Tenancy.RequestContext
        switch await authenticator.authenticate(token: token, requestId: requestId) {
        case .success(let verified): requestContext = verified
        case .failure(let refusal):
            logger.info(
                "authentication refused", metadata: ["reason": .string(String(refusal.detail.prefix(512))), "request_id": .string(requestId)])
            throw ProblemDetails(.unauthorized, kind: "unauthorized", title: "Unauthorized", detail: refusal.reason)
        }
        let limit = configuration.maxFrameBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch {
            throw ProblemDetails(.contentTooLarge, kind: "payload-too-large", title: "Payload Too Large", detail: "the body is larger than \(limit) bytes", extra: ["limit": String(limit)])
        }
        // The tenant's own limit, as for a WebSocket frame.
        let quotas = await policies.quotas(requestContext.tenant)
        if let refusal = QuotaGate.message(bytes: body.readableBytes, limit: quotas.maxMessageBytes) {
            metrics.error(code: refusal.code.rawValue)
            throw ProblemDetails(
                .contentTooLarge, kind: "payload-too-large", title: "Payload Too Large", detail: refusal.message,
                extra: ["limit": String(refusal.limit), "quota": refusal.quota.rawValue])
        }
        let isJSON = request.headers[.contentType]?.lowercased().contains("json") == true
        let codec = WireCodec(limits: MessagePackLimits(maxInputBytes: limit))
        let syncRequest: HTTPSyncRequest
        do {
            let bytes = Array(body.readableBytesView)
            let message = isJSON ? try codec.message(from: JSONFrameReader(limits: codec.limits).decode(bytes)) : try codec.decode(bytes)
            guard case .httpSyncRequest(let decoded) = message else {
                throw WireDecodingError(.invalidValue("expected an HTTP sync request, got \(message.type)"))
            }
            syncRequest = decoded
        } catch let error as WireDecodingError {
            throw ProblemDetails(.badRequest, kind: "invalid-sync-request", title: "Bad Request", detail: error.description)
        }
        let response = await process(syncRequest, context: requestContext)
        let value = WireCodec.dataValue(of: .httpSyncResponse(response))
        var headers = HTTPFields()
        let payload: ByteBuffer
        if isJSON {
            headers[.contentType] = "application/json"
            payload = ByteBuffer(string: JSONWriter.string(value))
        } else {
            headers[.contentType] = "application/x-msgpack"
            payload = ByteBuffer(bytes: MessagePackWriter.encode(value))
        }
        headers[.requestID] = requestId
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: payload))
    }

    /// Handles one poll. Its deltas and query results together carry at most
    /// `configuration.syncResponseBytes` of records (each map and query at least one when it
    /// has any): a map with more changes than fit returns the first of them, in the order the
    /// server made them, and a `serverSyncTimestamp` from which the next poll continues; a
    /// query cut short says `hasMore` with a `nextCursor`.
    func process(_ request: HTTPSyncRequest, context: Tenancy.RequestContext) async -> HTTPSyncResponse {
        let clock = clocks.clock(for: context.tenant)
        // The clock-drift rule: a client clock further ahead than allowed moves nothing.
        let latestMillis = WritePath.latestAcceptedMillis(nowMillis: clock.nowMillis(), maxDrift: configuration.maxClockDrift)
        if request.clientHlc.millis <= latestMillis { clock.observe(request.clientHlc) }
        var errors: [HTTPSyncError] = []
        var ack: HTTPSyncAck?
        if let ops = request.operations, !ops.isEmpty {
            let outcome = await writes.apply(ops, batchConcern: nil, context: context, writer: nil)
            var durable = true
            if let refusal = outcome.refusal {
                errors.append(HTTPSyncError(code: refusal.code, message: refusal.message))
                durable = false
            } else if let ticket = outcome.ticket {
                durable = await durability.waitUntilDurable(ticket, timeout: configuration.persistTimeout)
            }
            if durable {
                ack = HTTPSyncAck(lastId: outcome.ack.lastId, results: outcome.ack.results)
            } else if outcome.refusal == nil {
                errors.append(HTTPSyncError(code: WireErrorCode.unavailable.rawValue, message: "storage has not confirmed the writes in time; send them again"))
            }
        }
        var budget = configuration.syncResponseBytes
        var deltas: [HTTPSyncDelta] = []
        // Deltas and query results over some of a map's partitions only would be wrong, not
        // partial: when the node cannot serve every partition, it says so for each of them.
        // A node of a cluster gathers from the owners; one that cannot (no cluster, or a
        // partition it owns is loading) says so per map and query.
        let owners: [NodeID]
        var readRefusal: ErrorMessage?
        switch routing.mapSyncOwners(canGather: spread != nil) {
        case .success(let found): owners = found
        case .failure(let refused):
            owners = []
            readRefusal = refused.message
        }
        for sync in request.syncMaps ?? [] {
            if let readRefusal {
                errors.append(HTTPSyncError(code: readRefusal.code, message: readRefusal.message, context: sync.mapName))
                continue
            }
            let position = SyncPosition(timestamp: sync.lastSyncTimestamp)
            if let spread, !owners.isEmpty {
                do {
                    let delta = try await spread.delta(tenant: context.tenant, map: sync.mapName, after: position, maxBytes: max(budget, 1), owners: owners)
                    let records = delta.changes.map {
                        HTTPSyncDeltaRecord(key: $0.key, record: $0.record, eventType: $0.record.isTombstone ? .remove : .put)
                    }
                    budget -= delta.changes.reduce(0) { $0 + 64 + $1.key.utf8.count + ($1.record.value.map(MessagePackWriter.encodedSize(of:)) ?? 1) }
                    deltas.append(HTTPSyncDelta(mapName: sync.mapName, records: records, serverSyncTimestamp: delta.next.timestamp(nowMillis: clock.nowMillis())))
                } catch {
                    let refusal = ErrorMessage.partitionOwnerUnreachable(owners[0])
                    errors.append(HTTPSyncError(code: refusal.code, message: refusal.message, context: sync.mapName))
                }
                continue
            }
            guard let store = maps.existingStore(tenant: context.tenant, name: sync.mapName) else {
                deltas.append(HTTPSyncDelta(mapName: sync.mapName, records: [], serverSyncTimestamp: position.timestamp(nowMillis: clock.nowMillis())))
                continue
            }
            if await store.kind == .orMap {
                errors.append(HTTPSyncError(code: WireErrorCode.badRequest.rawValue, message: "HTTP sync carries LWW maps only", context: sync.mapName))
                continue
            }
            let delta = await store.lwwDelta(after: position, maxBytes: max(budget, 1))
            budget -= delta.records.reduce(0) { $0 + 64 + $1.key.utf8.count }
            let records = delta.records.map {
                HTTPSyncDeltaRecord(key: $0.key, record: $0.record, eventType: $0.record.isTombstone ? .remove : .put)
            }
            budget -= records.reduce(0) { $0 + ($1.record.value.map(MessagePackWriter.encodedSize(of:)) ?? 1) }
            deltas.append(HTTPSyncDelta(
                mapName: sync.mapName, records: records, serverSyncTimestamp: delta.next.timestamp(nowMillis: clock.nowMillis())))
        }
        var queryResults: [HTTPSyncQueryResult] = []
        for query in request.queries ?? [] {
            if let readRefusal {
                errors.append(HTTPSyncError(code: readRefusal.code, message: readRefusal.message, context: query.queryId))
                continue
            }
            var filter: DataObject?
            if case .object(let object) = query.filter { filter = object }
            let limit = query.limit.map { Int(max(0, min($0, 10_000))) }
            let typed = Query(where: filter, limit: limit, cursor: query.cursor)
            let store = maps.existingStore(tenant: context.tenant, name: query.mapName)
            let cost: @Sendable (QueryRecord) -> Int = { 12 + MessagePackWriter.encodedSize(of: $0.dataValue) }
            let page: QueryPage
            if let spread, !owners.isEmpty {
                do {
                    page = try await spread.queryPage(
                        tenant: context.tenant, map: query.mapName, query: typed, nowMillis: clock.nowMillis(), maxBytes: max(budget, 1), cost: cost,
                        owners: owners)
                } catch {
                    let refusal = ErrorMessage.partitionOwnerUnreachable(owners[0])
                    errors.append(HTTPSyncError(code: refusal.code, message: refusal.message, context: query.queryId))
                    continue
                }
            } else {
                page = await store?.queryPage(typed, nowMillis: clock.nowMillis(), maxBytes: max(budget, 1), cost: cost)
                    ?? QueryPage(results: [], hasMore: false, nextCursor: nil, cursorStatus: typed.cursor == nil ? .none : .invalid)
            }
            budget -= page.results.reduce(0) { $0 + 12 + MessagePackWriter.encodedSize(of: $1.dataValue) }
            queryResults.append(HTTPSyncQueryResult(
                queryId: query.queryId, results: page.results.map(\.dataValue), hasMore: page.hasMore, nextCursor: page.nextCursor))
        }
        for search in request.searches ?? [] {
            errors.append(HTTPSyncError(code: WireErrorCode.featureUnavailable.rawValue, message: Unsupported.search, context: search.searchId))
        }
        return HTTPSyncResponse(
            serverHlc: clock.now(), ack: ack, deltas: request.syncMaps == nil ? nil : deltas,
            queryResults: request.queries == nil ? nil : queryResults, searchResults: nil, errors: errors.isEmpty ? nil : errors)
    }
}
