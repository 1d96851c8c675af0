import Logging
import Synchronization
import Tenancy
import TopGunCore

/// A tenant's connections and live subscriptions counted for the whole cluster: a node admits
/// one only within what it reserved in the cluster's table (`ClusterQuotaStore.reserve`), and
/// the live runs' reservations never add up to more than the limit, so the cluster never holds
/// more than the limit, whichever nodes the clients use.
///
/// A node reserves a few slots at a time (`chunk`) as its clients need them, and gives back,
/// about once a second (`giveBackSurplus`), what it holds beyond its use, so that an idle
/// node does not keep slots another node's clients need. A node that cannot reach the table
/// admits only within what it holds.
final class ClusterSlots: Sendable {
    struct Key: Hashable, Sendable {
        var tenant: TenantID
        var kind: ClusterSlotKind
    }

    struct Holding: Sendable, Equatable {
        var inUse: Int64 = 0
        var reserved: Int64 = 0
    }

    private let holdings = Mutex<[Key: Holding]>([:])
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

    /// Takes a slot of `kind` for the tenant, reserving more in the cluster's table when this
    /// node holds none free; false when the cluster's limit is taken (or the table cannot be
    /// reached and this node holds none free).
    func acquire(_ kind: ClusterSlotKind, tenant: TenantID, limit: Int64) async -> Bool {
        let key = Key(tenant: tenant, kind: kind)
        if take(key) { return true }
        let granted: Int64
        do {
            granted = try await store.reserve(
                kind, tenant: tenant, wanted: Self.chunk(limit: limit, members: members()), limit: limit, node: node, incarnation: incarnation())
        } catch {
            logger.warning("cannot reserve a quota slot in the cluster's table", metadata: [
                "tenant": "\(tenant)", "kind": "\(kind.rawValue)", "error": "\(error)",
            ])
            return false
        }
        return holdings.withLock { holdings in
            holdings[key, default: Holding()].reserved += granted
            guard holdings[key]!.inUse < holdings[key]!.reserved else { return false }
            holdings[key]!.inUse += 1
            return true
        }
    }

    private func take(_ key: Key) -> Bool {
        holdings.withLock { holdings in
            guard let holding = holdings[key], holding.inUse < holding.reserved else { return false }
            holdings[key]!.inUse += 1
            return true
        }
    }

    /// `count` slots of `kind` taken for the tenant are free again (kept reserved until the
    /// next `giveBackSurplus`).
    func release(_ kind: ClusterSlotKind, tenant: TenantID, count: Int64 = 1) {
        holdings.withLock { holdings in
            let key = Key(tenant: tenant, kind: kind)
            guard var holding = holdings[key] else { return }
            holding.inUse = max(0, holding.inUse - count)
            holdings[key] = holding
        }
    }

    /// Gives back every slot reserved beyond what is in use.
    func giveBackSurplus() async {
        let surplus = holdings.withLock { holdings -> [(Key, Int64)] in
            var surplus: [(Key, Int64)] = []
            for (key, holding) in holdings where holding.reserved > holding.inUse {
                surplus.append((key, holding.reserved - holding.inUse))
                holdings[key]!.reserved = holding.inUse
                if holding.inUse == 0 { holdings[key] = nil }
            }
            return surplus
        }
        for (key, count) in surplus {
            do {
                try await store.giveBack(key.kind, tenant: key.tenant, count: count, node: node, incarnation: incarnation())
            } catch {
                // Still reserved in the table: held again, given back next time.
                holdings.withLock { $0[key, default: Holding()].reserved += count }
            }
        }
    }

    /// What this node holds (for tests).
    func holding(_ kind: ClusterSlotKind, tenant: TenantID) -> Holding {
        holdings.withLock { $0[Key(tenant: tenant, kind: kind)] ?? Holding() }
    }
}
