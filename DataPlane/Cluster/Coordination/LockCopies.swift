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

/// A lock as it travels from its owner to the other nodes: `LockTable.State` with
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

/// Every lock of a partition as its owner holds them, sent to the other nodes after each change
/// (the `lock.copy` request, answered once stored).
///
/// Copies travel as concurrent requests, so they may arrive out of order: `epoch` (the
/// owner's term) and then `version` (increasing per sending run) tell which is the latest.
struct LockCopy: Sendable, Equatable {
    var partition: Int
    var epoch: Int64
    var version: Int64
    var locks: [ReplicatedLock]

    func encoded() -> [UInt8] {
        ClusterCodec.encode([
            "p": .int(Int64(partition)), "e": .int(epoch), "v": .int(version), "l": .array(locks.map(\.wireValue)),
        ])
    }

    init(partition: Int, epoch: Int64, version: Int64, locks: [ReplicatedLock]) {
        self.partition = partition
        self.epoch = epoch
        self.version = version
        self.locks = locks
    }

    init(decoding body: [UInt8]) throws {
        let object = try ClusterCodec.decode(body)
        let partition: Int64 = try object.required("p")
        guard (0..<Int64(PartitionFunction.partitionCount)).contains(partition) else {
            throw ClusterMessageError("a lock copy names partition \(partition)")
        }
        self.partition = Int(partition)
        epoch = try object.required("e")
        version = try object.required("v")
        let locks: [DataValue] = try object.required("l")
        self.locks = try locks.map(ReplicatedLock.init(wire:))
    }
}

/// The locks this node keeps of other nodes' partitions: each partition's locks as its owner
/// last sent them. When this node becomes a partition's owner, it takes them over (`take`).
final class LockCopies: Sendable {
    private let copies = Mutex<[Int: LockCopy]>([:])

    init() {}

    /// Keeps `copy` unless a later one of its partition is kept (a later epoch, or a later
    /// version of the same epoch): a deposed owner's or a delayed copy never replaces it.
    func store(_ copy: LockCopy) {
        copies.withLock { copies in
            if let kept = copies[copy.partition], (kept.epoch, kept.version) > (copy.epoch, copy.version) { return }
            copies[copy.partition] = copy
        }
    }

    func take(_ partition: Int) -> [ReplicatedLock] {
        copies.withLock { $0.removeValue(forKey: partition)?.locks ?? [] }
    }

    /// Forgets the copies `keep` (given a partition and its copy's epoch) says are stale.
    func keepOnly(_ keep: (_ partition: Int, _ epoch: Int64) -> Bool) {
        copies.withLock { copies in copies = copies.filter { keep($0.key, $0.value.epoch) } }
    }

    var partitions: [Int] { copies.withLock { $0.keys.sorted() } }
}
