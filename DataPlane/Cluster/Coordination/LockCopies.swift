import Synchronization
import Tenancy
import TopGunCore
import TopGunWire

/// A session anywhere in the cluster: its node's run and its id there.
struct SessionAddress: Hashable, Sendable {
    var node: NodeID
    var incarnation: String
    var session: UInt64
}

/// A lock as it travels from its owner to the partition's backups: `LockTable.State` with
/// each session named by its `SessionAddress` instead of this node's id for it.
struct ReplicatedLock: Sendable, Equatable {
    struct Holding: Sendable, Equatable {
        var session: SessionAddress
        var requestId: String
        var fencingToken: Int64
        var remainingMillis: Int64
    }

    struct Waiting: Sendable, Equatable {
        var session: SessionAddress
        var requestId: String
        var ttlMillis: Int64
    }

    var tenant: TenantID
    var name: String
    var lastFencingToken: Int64
    var holder: Holding?
    var queue: [Waiting]

    var wireValue: DataValue {
        func address(_ session: SessionAddress) -> DataValue {
            .array([.string(session.node.rawValue), .string(session.incarnation), .int(Int64(bitPattern: session.session))])
        }
        var object: DataObject = [
            "t": .string(tenant.rawValue), "n": .string(name), "l": .int(lastFencingToken),
            "q": .array(queue.map { .array([address($0.session), .string($0.requestId), .int($0.ttlMillis)]) }),
        ]
        if let holder {
            object["h"] = .array([address(holder.session), .string(holder.requestId), .int(holder.fencingToken), .int(holder.remainingMillis)])
        }
        return .object(object)
    }

    init(tenant: TenantID, name: String, lastFencingToken: Int64, holder: Holding?, queue: [Waiting]) {
        self.tenant = tenant
        self.name = name
        self.lastFencingToken = lastFencingToken
        self.holder = holder
        self.queue = queue
    }

    init(wire value: DataValue) throws {
        let object = try DataObject(wire: value)
        func address(_ value: DataValue) throws -> SessionAddress {
            guard case .array(let parts) = value, parts.count == 3, case .string(let node) = parts[0], case .string(let run) = parts[1],
                case .int(let session) = parts[2]
            else { throw ClusterMessageError("a lock's session is not [node, run, id]") }
            return SessionAddress(node: NodeID(node), incarnation: run, session: UInt64(bitPattern: session))
        }
        tenant = TenantID(try object.required("t") as String)
        name = try object.required("n")
        lastFencingToken = try object.required("l")
        if let holder = object["h"] {
            guard case .array(let parts) = holder, parts.count == 4, case .string(let requestId) = parts[1], case .int(let token) = parts[2],
                case .int(let remaining) = parts[3]
            else { throw ClusterMessageError("a lock's holder is malformed") }
            self.holder = Holding(session: try address(parts[0]), requestId: requestId, fencingToken: token, remainingMillis: remaining)
        }
        let waiting: [DataValue] = try object.required("q")
        queue = try waiting.map { value in
            guard case .array(let parts) = value, parts.count == 3, case .string(let requestId) = parts[1], case .int(let ttl) = parts[2] else {
                throw ClusterMessageError("a lock's waiter is malformed")
            }
            return Waiting(session: try address(parts[0]), requestId: requestId, ttlMillis: ttl)
        }
    }
}

/// The locks this node keeps as a backup of other nodes' partitions: each partition's locks
/// as its owner last sent them, under the owner's epoch. When this node becomes a
/// partition's owner, it takes them over (`take`).
final class LockCopies: Sendable {
    private let copies = Mutex<[Int: (epoch: Int64, locks: [ReplicatedLock])]>([:])

    init() {}

    /// An owner's locks of `partition` under `epoch`, replacing an older copy (a copy sent
    /// under an earlier epoch, by a deposed owner, never replaces a later one).
    func store(partition: Int, epoch: Int64, locks: [ReplicatedLock]) {
        copies.withLock { copies in
            if let kept = copies[partition], kept.epoch > epoch { return }
            copies[partition] = (epoch, locks)
        }
    }

    func take(_ partition: Int) -> [ReplicatedLock] {
        copies.withLock { $0.removeValue(forKey: partition)?.locks ?? [] }
    }

    /// Forgets the copies of partitions this node no longer backs up.
    func keepOnly(_ keep: (Int) -> Bool) {
        copies.withLock { copies in copies = copies.filter { keep($0.key) } }
    }

    var partitions: [Int] { copies.withLock { $0.keys.sorted() } }
}
