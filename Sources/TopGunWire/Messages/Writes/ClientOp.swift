import TopGunCore

/// One write as a client sends it (protocol.md §6.5.2, ClientOp), inside `OP_BATCH`,
/// `CLIENT_OP` or an HTTP sync request.
///
/// The HEAD client also puts its op-log bookkeeping (`timestamp`, `synced`) into each op;
/// both are kept so that a re-encoded op carries everything the client sent.
public struct ClientOp: Sendable, Equatable, WireField {
    public var id: String?
    public var mapName: String
    public var key: String
    /// `PUT`, `REMOVE`, `OR_ADD` or `OR_REMOVE`; older clients leave it out.
    public var opType: String?
    public var record: LWWRecord?
    public var orRecord: ORMapRecord?
    public var orTag: String?
    public var writeConcern: WriteConcern?
    public var timeout: Double?
    public var timestamp: Timestamp?
    public var synced: Bool?
    /// Set when the op's bytes could not be read (a string in it is not valid UTF-8): why,
    /// naming the field. Such an op holds only its `id`, when that was readable, and is
    /// rejected for good by the server; the rest of its batch goes on. Never on the wire.
    public var decodingProblem: String?

    public init(
        id: String? = nil, mapName: String, key: String, opType: String? = nil, record: LWWRecord? = nil,
        orRecord: ORMapRecord? = nil, orTag: String? = nil, writeConcern: WriteConcern? = nil, timeout: Double? = nil,
        timestamp: Timestamp? = nil, synced: Bool? = nil, decodingProblem: String? = nil
    ) {
        self.id = id
        self.mapName = mapName
        self.key = key
        self.opType = opType
        self.record = record
        self.orRecord = orRecord
        self.orTag = orTag
        self.writeConcern = writeConcern
        self.timeout = timeout
        self.timestamp = timestamp
        self.synced = synced
        self.decodingProblem = decodingProblem
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        id = try f.optional("id")
        mapName = try f.required("mapName")
        key = try f.required("key")
        opType = try f.optional("opType")
        record = try f.optional("record")
        orRecord = try f.optional("orRecord")
        orTag = try f.optional("orTag")
        writeConcern = try f.optional("writeConcern")
        timeout = try f.optional("timeout")
        timestamp = try f.optional("timestamp")
        synced = try f.optional("synced")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.fields.reserveCapacity(8)
        f.append("id", id)
        f.append("mapName", mapName)
        f.append("key", key)
        f.append("opType", opType)
        f.append("record", record)
        f.append("orRecord", orRecord)
        f.append("orTag", orTag)
        f.append("writeConcern", writeConcern)
        f.append("timeout", timeout)
        f.append("timestamp", timestamp)
        f.append("synced", synced)
        return .object(f)
    }
}

/// `CLIENT_OP` (client → server): a single op as the payload.
public struct ClientOpMessage: MessageBody {
    public static let type = "CLIENT_OP"
    public static let envelope = MessageEnvelope.payload
    public var op: ClientOp

    public init(op: ClientOp) { self.op = op }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        op = try ClientOp(wire: .object(f))
    }

    public var wireFields: DataObject {
        guard case .object(let f) = op.wireValue else { return DataObject() }
        return f
    }
}

/// `OP_BATCH` (client → server): every op the client has not seen acknowledged yet.
public struct OpBatch: MessageBody {
    public static let type = "OP_BATCH"
    public static let envelope = MessageEnvelope.payload
    public var ops: [ClientOp]
    public var writeConcern: WriteConcern?
    public var timeout: Double?

    public init(ops: [ClientOp], writeConcern: WriteConcern? = nil, timeout: Double? = nil) {
        self.ops = ops
        self.writeConcern = writeConcern
        self.timeout = timeout
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        ops = try f.required("ops")
        writeConcern = try f.optional("writeConcern")
        timeout = try f.optional("timeout")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("ops", ops)
        f.append("writeConcern", writeConcern)
        f.append("timeout", timeout)
        return f
    }
}
