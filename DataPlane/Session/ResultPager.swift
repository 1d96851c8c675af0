import Synchronization

/// Sends the rest of one connection's large live-query results, a page at a time, as the
/// client reads (protocol.md §6.6.5 leaves a `QUERY_RESP` unbounded; the TypeScript client
/// asks for no further pages, so the server brings them).
///
/// One task per connection, and only while results are pending: it waits for room in the
/// connection's outbound queue, asks the next query in turn for one page, and goes round the
/// pending queries until none is left. One page at a time, so however many large queries a
/// client opens, what the server holds for it stays within its outbound bound.
final class ResultPager: Sendable {
    struct Pending: Sendable {
        let store: MapStore
        let queryId: String
    }

    private struct State {
        var pending: [Pending] = []
        var running = false
    }

    private let state = Mutex(State())
    let outbound: SessionOutbound
    let pageBytes: Int

    init(outbound: SessionOutbound, pageBytes: Int) {
        self.outbound = outbound
        self.pageBytes = pageBytes
    }

    /// Queues a query whose first result has pages left; true when the caller must start
    /// `run()` (no task is running).
    func add(_ pending: Pending) -> Bool {
        state.withLock { state in
            state.pending.append(pending)
            guard !state.running else { return false }
            state.running = true
            return true
        }
    }

    /// Sends pages until no query has any left, or the connection closes.
    func run() async {
        while let next = takeNext() {
            guard await outbound.waitForRoom() else {
                state.withLock { state in
                    state.pending = []
                    state.running = false
                }
                return
            }
            let more = await next.store.sendNextResultPage(queryId: next.queryId, session: outbound.id, maxBytes: pageBytes)
            if more { state.withLock { $0.pending.append(next) } }
        }
    }

    /// The next query in turn, or nil (and the task ends) when none is pending.
    private func takeNext() -> Pending? {
        state.withLock { state in
            guard !state.pending.isEmpty else {
                state.running = false
                return nil
            }
            return state.pending.removeFirst()
        }
    }
}
