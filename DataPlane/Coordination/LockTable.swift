import Tenancy
import TopGunCore

/// The state of every distributed lock on a node, as a pure state machine: events in
/// (request, release, disconnect, time passing), actions out (grant, released reply). No
/// I/O and no clock of its own, so every rule is unit-tested directly.
///
/// Rules (protocol.md §6.6.9, legacy semantics, which the client is built around):
/// a free or expired lock is granted with a fencing token one above the name's last one;
/// the holder asking again extends its lease and keeps its token; anyone else is queued and
/// granted later; a refusal is never sent as `LOCK_RELEASED`.
public struct LockTable: Sendable {
    public struct Owner: Hashable, Sendable {
        public var session: SessionID
        public var requestId: String
    }

    /// A lock of a tenant.
    public typealias LockName = TenantScopedName

    struct Holder: Sendable {
        var owner: Owner
        var fencingToken: Int64
        var expiresAtMillis: Int64
    }

    struct Waiter: Sendable {
        var owner: Owner
        var ttlMillis: Int64
    }

    struct Lock: Sendable {
        var holder: Holder?
        var queue: [Waiter] = []
        var lastFencingToken: Int64 = 0
    }

    public enum Action: Sendable, Equatable {
        case granted(LockName, Owner, fencingToken: Int64)
        case released(LockName, session: SessionID, requestId: String, success: Bool)
        /// A release named a lock nobody holds.
        case unknownLock(LockName, session: SessionID, requestId: String)
    }

    /// Leases are clamped to this range (ms).
    public static let ttlRange: ClosedRange<Int64> = 1_000...300_000
    public static let defaultTTL: Int64 = 10_000

    private var locks: [LockName: Lock] = [:]
    /// Names whose state changed since `takeChanged` (a cluster copies them to backups).
    private var changed = Set<LockName>()

    public init() {}

    /// - Parameter fencingFloor: tokens granted from now on are above it. A cluster passes
    ///   `fencingFloor(epoch:)` of the name's partition, so that a new owner's tokens exceed
    ///   every token its predecessors granted (see there).
    public mutating func request(_ name: LockName, owner: Owner, ttlMillis: Int64?, nowMillis: Int64, fencingFloor: Int64 = 0) -> [Action] {
        let ttl = min(max(ttlMillis ?? Self.defaultTTL, Self.ttlRange.lowerBound), Self.ttlRange.upperBound)
        var lock = locks[name] ?? Lock()
        lock.lastFencingToken = max(lock.lastFencingToken, fencingFloor)
        var actions: [Action] = []
        if let holder = lock.holder, holder.expiresAtMillis <= nowMillis {
            // An expired lease the expiry sweep has not seen yet: waiters come first.
            lock.holder = nil
            actions += grantNext(name, &lock, nowMillis: nowMillis)
        }
        if var holder = lock.holder {
            if holder.owner.session == owner.session {
                // Re-entrant for its holder: extend the lease, same token.
                holder.expiresAtMillis = nowMillis + ttl
                lock.holder = holder
                actions.append(.granted(name, owner, fencingToken: holder.fencingToken))
            } else if !lock.queue.contains(where: { $0.owner == owner }) {
                lock.queue.append(Waiter(owner: owner, ttlMillis: ttl))
            }
        } else {
            lock.lastFencingToken += 1
            lock.holder = Holder(owner: owner, fencingToken: lock.lastFencingToken, expiresAtMillis: nowMillis + ttl)
            actions.append(.granted(name, owner, fencingToken: lock.lastFencingToken))
        }
        locks[name] = lock
        changed.insert(name)
        return actions
    }

    public mutating func release(_ name: LockName, session: SessionID, requestId: String, fencingToken: Int64, nowMillis: Int64) -> [Action] {
        guard var lock = locks[name], let holder = lock.holder, holder.expiresAtMillis > nowMillis else {
            return [.unknownLock(name, session: session, requestId: requestId)]
        }
        guard holder.owner.session == session, holder.fencingToken == fencingToken else {
            return [.released(name, session: session, requestId: requestId, success: false)]
        }
        lock.holder = nil
        var actions: [Action] = [.released(name, session: session, requestId: requestId, success: true)]
        actions += grantNext(name, &lock, nowMillis: nowMillis)
        store(name, lock)
        return actions
    }

    /// A session went away: its locks are released and its queued requests dropped.
    public mutating func removeSession(_ session: SessionID, nowMillis: Int64) -> [Action] {
        var actions: [Action] = []
        for name in Array(locks.keys) {
            guard var lock = locks[name] else { continue }
            let waiting = lock.queue.count
            lock.queue.removeAll { $0.owner.session == session }
            let held = lock.holder?.owner.session == session
            if held {
                lock.holder = nil
                actions += grantNext(name, &lock, nowMillis: nowMillis)
            }
            if held || lock.queue.count != waiting { store(name, lock) }
        }
        return actions
    }

    /// Expires leases that ran out and grants the next waiters.
    public mutating func expire(nowMillis: Int64) -> [Action] {
        var actions: [Action] = []
        for name in Array(locks.keys) {
            guard var lock = locks[name], let holder = lock.holder, holder.expiresAtMillis <= nowMillis else { continue }
            lock.holder = nil
            actions += grantNext(name, &lock, nowMillis: nowMillis)
            store(name, lock)
        }
        return actions
    }

    private func grantNext(_ name: LockName, _ lock: inout Lock, nowMillis: Int64) -> [Action] {
        guard !lock.queue.isEmpty else { return [] }
        let next = lock.queue.removeFirst()
        lock.lastFencingToken += 1
        lock.holder = Holder(owner: next.owner, fencingToken: lock.lastFencingToken, expiresAtMillis: nowMillis + next.ttlMillis)
        return [.granted(name, next.owner, fencingToken: lock.lastFencingToken)]
    }

    /// Entries are kept after release: fencing tokens must keep increasing per name.
    private mutating func store(_ name: LockName, _ lock: Lock) {
        locks[name] = lock
        changed.insert(name)
    }

    /// The names whose state changed since the last call.
    public mutating func takeChanged() -> Set<LockName> {
        defer { changed = [] }
        return changed
    }

    /// The current holder's fencing token, if the lock is held.
    public func fencingToken(of name: LockName, nowMillis: Int64) -> Int64? {
        guard let holder = locks[name]?.holder, holder.expiresAtMillis > nowMillis else { return nil }
        return holder.fencingToken
    }

    /// The tokens a partition's owner grants under `epoch` start above this: 2³² tokens per
    /// epoch. A partition's epoch grows by one at each change of owner and a node holds its
    /// locks only while it owns the partition, so every token granted under a later epoch
    /// exceeds every token of an earlier one, even when the earlier owner died with its state
    /// (a single node's epoch is 1: tokens 1, 2, 3…). Stays a safe JavaScript integer up to
    /// epoch 2²¹.
    public static func fencingFloor(epoch: Int64) -> Int64 {
        max(epoch - 1, 0) << 32
    }

    /// Forgets the locks whose names `inPartition` says belong to a partition that left this
    /// node (holders and waiters alike); their fencing history stays safe by `fencingFloor`.
    public mutating func dropLocks(where inPartition: (LockName) -> Bool) {
        locks = locks.filter { !inPartition($0.key) }
    }

    /// Drops every lock of a tenant, fencing history included (a deleted tenant).
    public mutating func removeTenant(_ tenant: TenantID) {
        locks = locks.filter { $0.key.tenant != tenant }
    }

    public func queueLength(of name: LockName) -> Int { locks[name]?.queue.count ?? 0 }
}


extension LockTable {
    /// One lock as it can leave this node (for a backup, for the next owner): times are
    /// relative to when it was taken, since nodes' clocks differ.
    public struct State: Sendable, Equatable {
        public struct Holding: Sendable, Equatable {
            public var owner: Owner
            public var fencingToken: Int64
            public var remainingMillis: Int64
        }

        public struct Waiting: Sendable, Equatable {
            public var owner: Owner
            public var ttlMillis: Int64
        }

        public var name: LockName
        public var lastFencingToken: Int64
        public var holder: Holding?
        public var queue: [Waiting]
    }

    /// The state of every lock `matches` selects, as of `nowMillis`.
    public func states(where matches: (LockName) -> Bool, nowMillis: Int64) -> [State] {
        locks.compactMap { name, lock in
            // A free lock needs no copy: the next owner's tokens start above its epoch's floor.
            guard matches(name), lock.holder != nil || !lock.queue.isEmpty else { return nil }
            let holder = lock.holder.flatMap { holder in
                holder.expiresAtMillis > nowMillis
                    ? State.Holding(owner: holder.owner, fencingToken: holder.fencingToken, remainingMillis: holder.expiresAtMillis - nowMillis) : nil
            }
            return State(
                name: name, lastFencingToken: lock.lastFencingToken, holder: holder,
                queue: lock.queue.map { State.Waiting(owner: $0.owner, ttlMillis: $0.ttlMillis) })
        }
    }

    /// Takes over locks another node held (this node now owns their partition): each holder
    /// keeps its token for the time it had left, waiters keep their place, and tokens granted
    /// from now on are above both the lock's last token and `fencingFloor`. A lock whose
    /// holder is gone (not in `states`, or expired) goes to its next waiter. Locks this node
    /// already has under those names keep their holder; the restored waiters queue after theirs.
    public mutating func restore(_ states: [State], nowMillis: Int64, fencingFloor: Int64) -> [Action] {
        var actions: [Action] = []
        for state in states {
            var lock = locks[state.name] ?? Lock()
            lock.lastFencingToken = max(lock.lastFencingToken, state.lastFencingToken, fencingFloor)
            if lock.holder == nil, let holding = state.holder {
                lock.holder = Holder(owner: holding.owner, fencingToken: holding.fencingToken, expiresAtMillis: nowMillis + holding.remainingMillis)
            }
            for waiting in state.queue where !lock.queue.contains(where: { $0.owner == waiting.owner }) && lock.holder?.owner != waiting.owner {
                lock.queue.append(Waiter(owner: waiting.owner, ttlMillis: waiting.ttlMillis))
            }
            if lock.holder == nil { actions += grantNext(state.name, &lock, nowMillis: nowMillis) }
            store(state.name, lock)
        }
        return actions
    }
}
