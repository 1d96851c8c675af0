import Tenancy
import TopGunCore
import TopGunWire

/// The requests nodes send each other on the cluster port (design.md §6), each a MessagePack
/// map under a type name. The transport (`ClusterTransport`) carries them as opaque bodies.
enum ClusterMessageType {
    /// A client's ops for partitions the receiver owns: `ForwardedWrites` → `ForwardedOutcomes`.
    static let writes = "writes"
    /// OR-Map entries a client pushed: `ForwardedORMapPush` → one outcome.
    static let orMapPush = "ormap.push"
    /// Records of partitions the receiver owns, merged like writes: `RecordBatch` → empty.
    static let mergeRecords = "records.merge"
    /// One-way, in order: a `StreamMessage` of pushes (`PeerStream`).
    static let stream = "stream"
}

/// A body that did not decode.
struct ClusterMessageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum ClusterCodec {
    static func encode(_ object: DataObject) -> [UInt8] { MessagePackWriter.encode(.object(object)) }

    /// Bodies are bounded by the cluster port's frame limit (16 MiB), not the client
    /// protocol's 2 MiB: a node's batch of changes for a backup may be larger than a client's.
    static let limits = MessagePackLimits(maxInputBytes: ClusterTransportConfiguration().maxFrameBytes)

    static func decode(_ bytes: [UInt8]) throws -> DataObject {
        guard case .object(let object) = try MessagePackReader(limits: limits).decode(bytes) else {
            throw ClusterMessageError("a cluster message is not a map")
        }
        return object
    }

    static func context(_ context: RequestContext) -> DataValue {
        .object([
            "tenant": .string(context.tenant.rawValue), "principal": .string(context.principal),
            "roles": .array(context.roles.map { .string($0) }), "requestId": .string(context.requestId), "keyId": .string(context.keyId),
        ])
    }

    static func context(from object: DataObject) throws -> RequestContext {
        RequestContext(
            tenant: TenantID(try object.required("tenant")), principal: try object.required("principal"), roles: try object.required("roles"),
            requestId: try object.required("requestId"), keyId: try object.required("keyId"))
    }

    static func outcome(_ outcome: OpOutcome) -> DataValue {
        var object: DataObject = ["ok": .bool(outcome.success)]
        object.append("code", outcome.code.map { Int64($0.rawValue) })
        object.append("error", outcome.error)
        object.append("field", outcome.field)
        return .object(object)
    }

    static func outcome(from value: DataValue) throws -> OpOutcome {
        let object = try DataObject(wire: value)
        let code: Int64? = try object.optional("code")
        return OpOutcome(
            success: try object.required("ok"), code: code.flatMap { WireErrorCode(rawValue: $0) }, error: try object.optional("error"),
            field: try object.optional("field"))
    }

    /// A stored row with its exact CRDT state (`StoredValueCodec`, as storage keeps it).
    static func record(_ record: StoredRecord) -> DataValue {
        .object([
            "t": .string(record.key.tenant.rawValue), "m": .string(record.key.mapName), "k": .string(record.key.key),
            "kind": .string(record.value.kind.rawValue), "p": .int(Int64(record.partition)), "s": .int(record.sequence),
            "v": .binary(StoredValueCodec.encode(record.value)),
        ])
    }

    static func record(from value: DataValue) throws -> StoredRecord {
        let object = try DataObject(wire: value)
        guard let kind = StoredValue.Kind(rawValue: try object.required("kind")) else { throw ClusterMessageError("unknown record kind") }
        guard case .binary(let payload)? = object["v"] else { throw ClusterMessageError("a record has no binary value") }
        let partition: Int = try object.required("p")
        guard (0..<PartitionFunction.partitionCount).contains(partition) else { throw ClusterMessageError("partition \(partition) out of range") }
        let record = StoredRecord(
            key: StorageKey(tenant: TenantID(try object.required("t")), mapName: try object.required("m"), key: try object.required("k")),
            partition: partition, value: try StoredValueCodec.decode(payload, kind: kind), sequence: try object.required("s"))
        try record.validate()
        return record
    }
}

/// `writes`: what the node a client is connected to forwards to an owner.
struct ForwardedWrites {
    var context: RequestContext
    var batchConcern: WriteConcern?
    var ops: [ClientOp]

    func encoded() -> [UInt8] {
        var object: DataObject = ["ctx": ClusterCodec.context(context)]
        object.append("concern", batchConcern)
        // The ops as the client's own OP_BATCH frame: one codec for them everywhere.
        object.append("batch", DataValue.binary(WireCodec().encode(.opBatch(OpBatch(ops: ops)))))
        return ClusterCodec.encode(object)
    }

    init(context: RequestContext, batchConcern: WriteConcern?, ops: [ClientOp]) {
        self.context = context
        self.batchConcern = batchConcern
        self.ops = ops
    }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        context = try ClusterCodec.context(from: try object.required("ctx"))
        batchConcern = try object.optional("concern")
        guard case .binary(let batch)? = object["batch"], case .opBatch(let decoded) = try WireCodec().decode(batch) else {
            throw ClusterMessageError("forwarded writes carry no OP_BATCH")
        }
        ops = decoded.ops
    }
}

/// The owner's answer to `writes`: one outcome per op, in order.
struct ForwardedOutcomes {
    var outcomes: [OpOutcome]

    func encoded() -> [UInt8] {
        ClusterCodec.encode(["outcomes": .array(outcomes.map(ClusterCodec.outcome))])
    }

    init(_ outcomes: [OpOutcome]) { self.outcomes = outcomes }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        let values: [DataValue] = try object.required("outcomes")
        outcomes = try values.map(ClusterCodec.outcome(from:))
    }
}

/// `ormap.push`: OR-Map entries a client pushed, for keys the receiver owns.
struct ForwardedORMapPush {
    var context: RequestContext
    var mapName: String
    var entries: [ORMapEntry]

    init(context: RequestContext, mapName: String, entries: [ORMapEntry]) {
        self.context = context
        self.mapName = mapName
        self.entries = entries
    }

    func encoded() -> [UInt8] {
        ClusterCodec.encode(["ctx": ClusterCodec.context(context), "map": .string(mapName), "entries": entries.wireValue])
    }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        context = try ClusterCodec.context(from: try object.required("ctx"))
        mapName = try object.required("map")
        entries = try object.required("entries")
    }
}

/// `records.merge`: rows with their exact CRDT state.
struct RecordBatch {
    var records: [StoredRecord]

    init(_ records: [StoredRecord]) { self.records = records }

    func encoded() -> [UInt8] {
        ClusterCodec.encode(["records": .array(records.map(ClusterCodec.record))])
    }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        let values: [DataValue] = try object.required("records")
        records = try values.map(ClusterCodec.record(from:))
    }
}
