import Tenancy
import TopGunWire

/// The event journal (protocol.md §6.6.9): reads by sequence and live subscriptions.
public struct JournalHandler: Sendable {
    let journal: EventJournal
    let replies: ErrorReplies

    public init(journal: EventJournal, metrics: DataPlaneMetrics) {
        self.journal = journal
        self.replies = ErrorReplies(metrics: metrics)
    }

    func subscribe(_ request: JournalSubscribe, context: RequestContext, out: SessionOutbound) {
        var from: UInt64?
        if let text = request.fromSequence {
            guard let parsed = UInt64(text) else { return badSequence(text, out) }
            from = parsed
        }
        journal.subscribe(
            tenant: context.tenant, subscriptionId: request.requestId, fromSequence: from, mapName: request.mapName, types: request.types, subscriber: out)
    }

    func unsubscribe(_ request: JournalUnsubscribe, context: RequestContext, out: SessionOutbound) {
        journal.unsubscribe(tenant: context.tenant, subscriptionId: request.subscriptionId, session: out.id)
    }

    func read(_ request: JournalRead, context: RequestContext, out: SessionOutbound) {
        guard let from = UInt64(request.fromSequence) else { return badSequence(request.fromSequence, out) }
        let limit = Int(min(max(request.limit ?? 100, 1), 10_000))
        let (events, hasMore) = journal.read(tenant: context.tenant, fromSequence: from, limit: limit, mapName: request.mapName)
        out.send(.journalReadResponse(JournalReadResponse(requestId: request.requestId, events: events, hasMore: hasMore)))
    }

    private func badSequence(_ text: String, _ out: SessionOutbound) {
        replies.badRequest("fromSequence must be a decimal sequence number, got '\(text)'", field: "fromSequence", to: out)
    }
}
