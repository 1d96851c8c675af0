import Logging
import Synchronization
import Tenancy
import TopGunCore

/// A tenant's connections and live subscriptions counted for the whole cluster: a node admits
/// one only within what it reserved in the cluster's table (`ClusterQuotaStore.reserve`), and
/// the live runs' reservations never add up to more than the limit, so the cluster never holds
/// more than the limit, whichever nodes the clients use.
///
/// A node reserves a few slots at a time (`chunk`, more when many clients wait) as its clients
/// need them, one reservation at a time per tenant and kind (the others wait for it and share
/// what it got), and gives back, about once a second (`giveBackSurplus`), what it holds beyond
/// its use, so that an idle node does not keep slots another node's clients need. Its row in
/// the table is always written whole (what it holds now), so a node whose run changed (its
/// lease lapsed while its clients stayed) counts its clients again from its next write on. A
/// node that cannot reach the table admits only within what it holds.
final class ClusterSlots: Sendable {
    struct Key: Hashable, Sendable {
        var tenant: TenantID
        var kind: ClusterSlotKind
    }

    struct Holding: Sendable, Equatable {
        var inUse: Int64 = 0
        var reserved: Int64 = 0
    }

    private struct State {
        var holdings: [Key: Holding] = [:]
        /// Keys whose row is being written (a reservation or a give-back), and who waits for
        /// it: one write at a time per key, so the row always says what this node holds.
        var writing: [Key: [CheckedContinuation<Bool, Never>]] = [:]
        /// The run this node's rows were last written under, and keys whose row must be
        /// written again (the run changed, or a write failed).
        var run: String?
        var rewrite: Set<Key> = []
    }

    private let state = Mutex(State())
    private let store: any ClusterQuotaStore
    private let node: NodeID
    private let incarnation: @Sendable () -> String
    private let members: @Sendable () -> Int
    private let logger: Logger

    init(
        store: any ClusterQuotaStore, node: NodeID, incarnation: @escaping @Sendable () -> String, members: @escaping @Sendable () -> Int,
        logger: Logger
    ) {
        self.store = store
        self.node = node
        self.incarnation = incarnation
        self.members = members
        self.logger = logger
    }

    /// How many slots a node reserves at once: a quarter of a fair part of the limit, 1 to 16.
    static func chunk(limit: Int64, members: Int) -> Int64 {
        min(max(limit / Int64(4 * max(members, 1)), 1), 16)
    }

    private enum Step {
        case taken
        case wait
        case reserve(holding: Int64)
    }

    /// Takes a slot of `kind` for the tenant, reserving more in the cluster's table when this
    /// node holds none free; false when the cluster's limit is taken (or the table cannot be
    /// reached and this node holds none free).
    func acquire(_ kind: ClusterSlotKind, tenant: TenantID, limit: Int64) async -> Bool {
        let key = Key(tenant: tenant, kind: kind)
        while true {
            let step = state.withLock { state -> Step in
                let holding = state.holdings[key] ?? Holding()
                if holding.inUse < holding.reserved {
                    state.holdings[key]!.inUse += 1
                    return .taken
                }
                if state.writing[key] != nil { return .wait }
                state.writing[key] = []
                return .reserve(holding: holding.reserved)
            }
            switch step {
            case .taken:
                return true
            case .reserve(let holding):
                return await reserve(key, limit: limit, holding: holding)
            case .wait:
                // Another write of this row is under way: wait for it, then try again unless
                // it was a reservation that got nothing (the limit is taken).
                let worthRetrying = await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.writing[key] != nil else { return true }
                        state.writing[key]!.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume(returning: true) }
                }
                if !worthRetrying { return false }
            }
        }
    }

    /// The one write under way for `key`: a reservation sized for this request and those
    /// waiting, the row set to what this node then holds.
    private func reserve(_ key: Key, limit: Int64, holding: Int64) async -> Bool {
        let waiting = Int64(state.withLock { $0.writing[key]?.count ?? 0 })
        let wanted = max(Self.chunk(limit: limit, members: members()), min(waiting + 1, limit))
        let run = incarnation()
        var granted: Int64 = 0
        var written = false
        do {
            granted = try await store.reserve(
                key.kind, tenant: key.tenant, wanted: wanted, limit: limit, holding: holding, node: node, incarnation: run)
            written = true
        } catch {
            logger.warning("cannot reserve a quota slot in the cluster's table", metadata: [
                "tenant": "\(key.tenant)", "kind": "\(key.kind.rawValue)", "error": "\(error)",
            ])
        }
        let (admitted, waiters) = state.withLock { state -> (Bool, [CheckedContinuation<Bool, Never>]) in
            state.holdings[key, default: Holding()].reserved += granted
            if written, state.run == run { state.rewrite.remove(key) }
            let waiters = state.writing.removeValue(forKey: key) ?? []
            guard state.holdings[key]!.inUse < state.holdings[key]!.reserved else { return (false, waiters) }
            state.holdings[key]!.inUse += 1
            return (true, waiters)
        }
        for waiter in waiters { waiter.resume(returning: granted > 0) }
        return admitted
    }

    /// `count` slots of `kind` taken for the tenant are free again (kept reserved until the
    /// next `giveBackSurplus`).
    func release(_ kind: ClusterSlotKind, tenant: TenantID, count: Int64 = 1) {
        state.withLock { state in
            let key = Key(tenant: tenant, kind: kind)
            guard var holding = state.holdings[key] else { return }
            holding.inUse = max(0, holding.inUse - count)
            state.holdings[key] = holding
        }
    }

    /// Gives back every slot reserved beyond what is in use; after a change of run (or a
    /// failed write), writes the rows again under the current run.
    func giveBackSurplus() async {
        let run = incarnation()
        let writes = state.withLock { state -> [(Key, Int64)] in
            if state.run != run {
                state.run = run
                state.rewrite.formUnion(state.holdings.keys)
            }
            var writes: [(Key, Int64)] = []
            // A row to write again for a key held no more: written as 0.
            for key in state.rewrite where state.holdings[key] == nil && state.writing[key] == nil {
                writes.append((key, 0))
                state.writing[key] = []
            }
            for (key, holding) in state.holdings where state.writing[key] == nil && (holding.reserved > holding.inUse || state.rewrite.contains(key)) {
                // Held as given back from now on: an underestimate here is safe, an
                // overestimate could admit past the limit.
                writes.append((key, holding.inUse))
                state.writing[key] = []
                state.holdings[key]!.reserved = holding.inUse
                if holding.inUse == 0 { state.holdings[key] = nil }
            }
            return writes
        }
        for (key, reserved) in writes {
            var written = false
            do {
                try await store.setReservation(key.kind, tenant: key.tenant, reserved: reserved, node: node, incarnation: run)
                written = true
            } catch {
                logger.debug("cannot give quota slots back; will again", metadata: ["tenant": "\(key.tenant)", "error": "\(error)"])
            }
            let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
                if written { state.rewrite.remove(key) } else { state.rewrite.insert(key) }
                return state.writing.removeValue(forKey: key) ?? []
            }
            for waiter in waiters { waiter.resume(returning: true) }
        }
    }

    /// What this node holds (for tests).
    func holding(_ kind: ClusterSlotKind, tenant: TenantID) -> Holding {
        state.withLock { $0.holdings[Key(tenant: tenant, kind: kind)] ?? Holding() }
    }
}
