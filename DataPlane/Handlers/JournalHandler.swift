import Tenancy
import TopGunWire

/// The event journal (protocol.md §6.6.9): reads by sequence and live subscriptions.
public struct JournalHandler: Sendable {
    let journal: EventJournal
    let replies: ErrorReplies
    /// On a node of a cluster: the tenant's sequencer may be another node.
    var cluster: ClusterCoordination?

    public init(journal: EventJournal, metrics: DataPlaneMetrics) {
        self.journal = journal
        self.replies = ErrorReplies(metrics: metrics)
    }

    func subscribe(_ request: JournalSubscribe, context: RequestContext, out: SessionOutbound) async {
        var from: UInt64?
        if let text = request.fromSequence {
            guard let parsed = UInt64(text) else { return badSequence(text, out) }
            from = parsed
        }
        if let cluster { return await cluster.journal.subscribe(request, tenant: context.tenant, out: out) }
        journal.subscribe(
            tenant: context.tenant, subscriptionId: request.requestId, fromSequence: from, mapName: request.mapName, types: request.types, subscriber: out)
    }

    func unsubscribe(_ request: JournalUnsubscribe, context: RequestContext, out: SessionOutbound) async {
        if let cluster { return await cluster.journal.unsubscribe(session: out.id, subscriptionId: request.subscriptionId) }
        journal.unsubscribe(tenant: context.tenant, subscriptionId: request.subscriptionId, session: out.id)
    }

    func read(_ request: JournalRead, context: RequestContext, out: SessionOutbound) async {
        guard let from = UInt64(request.fromSequence) else { return badSequence(request.fromSequence, out) }
        if let cluster, let sequencer = cluster.journalSequencer(of: context.tenant) {
            do {
                return out.send(encoded: try await cluster.journalRead(request, tenant: context.tenant, session: out.id, on: sequencer))
            } catch {
                return replies.send(NameRouting.refusal(error, owner: sequencer), to: out)
            }
        }
        let limit = Int(min(max(request.limit ?? 100, 1), 10_000))
        let (events, hasMore) = journal.read(tenant: context.tenant, fromSequence: from, limit: limit, mapName: request.mapName)
        out.send(.journalReadResponse(JournalReadResponse(requestId: request.requestId, events: events, hasMore: hasMore)))
    }

    private func badSequence(_ text: String, _ out: SessionOutbound) {
        replies.badRequest("fromSequence must be a decimal sequence number, got '\(text)'", field: "fromSequence", to: out)
    }
}
