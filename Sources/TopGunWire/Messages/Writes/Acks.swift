import TopGunCore

/// The outcome of one op inside `OP_ACK.results` and an HTTP sync `ack`.
public struct OpResult: WireField, Hashable, Sendable {
    public var opId: String
    public var success: Bool
    public var achievedLevel: WriteConcern
    public var error: String?

    public init(opId: String, success: Bool, achievedLevel: WriteConcern, error: String? = nil) {
        self.opId = opId
        self.success = success
        self.achievedLevel = achievedLevel
        self.error = error
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        opId = try f.required("opId")
        success = try f.required("success")
        achievedLevel = try f.required("achievedLevel")
        error = try f.optional("error")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("opId", opId)
        f.append("success", success)
        f.append("achievedLevel", achievedLevel)
        f.append("error", error)
        return .object(f)
    }
}

/// `OP_ACK` (server → client): every op with an id up to `lastId` is acknowledged.
public struct OpAck: MessageBody {
    public static let type = "OP_ACK"
    public static let envelope = MessageEnvelope.payload
    /// Decimal op id (or `"unknown"`, which the client reads as "all").
    public var lastId: String
    public var achievedLevel: WriteConcern?
    public var results: [OpResult]?

    public init(lastId: String, achievedLevel: WriteConcern? = nil, results: [OpResult]? = nil) {
        self.lastId = lastId
        self.achievedLevel = achievedLevel
        self.results = results
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        lastId = try f.required("lastId")
        achievedLevel = try f.optional("achievedLevel")
        results = try f.optional("results")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("lastId", lastId)
        f.append("achievedLevel", achievedLevel)
        f.append("results", results)
        return f
    }
}

/// `OP_REJECTED` (server → client): one op was refused; the client keeps it pending.
public struct OpRejected: MessageBody {
    public static let type = "OP_REJECTED"
    public static let envelope = MessageEnvelope.payload
    public var opId: String
    public var reason: String
    public var code: Int64?
    /// This server's addition (protocol.md §15): what the code's `details` carry, e.g. the
    /// op's `field` at fault. Clients that do not know it ignore it.
    public var details: DataValue?

    public init(opId: String, reason: String, code: Int64? = nil, details: DataValue? = nil) {
        self.opId = opId
        self.reason = reason
        self.code = code
        self.details = details
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        opId = try f.required("opId")
        reason = try f.required("reason")
        code = try f.optional("code")
        details = f["details"]
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("opId", opId)
        f.append("reason", reason)
        f.append("code", code)
        if let details { f.append("details", details) }
        return f
    }
}
