import TopGunCore

/// The processor an `ENTRY_PROCESS(_BATCH)` runs: a name and a JavaScript body.
public struct EntryProcessor: WireField, Hashable, Sendable {
    /// 1...100 characters; `builtin:*` names the built-in processors.
    public var name: String
    /// 1...10 000 characters of JavaScript.
    public var code: String
    public var args: DataValue?

    public init(name: String, code: String, args: DataValue? = nil) {
        self.name = name
        self.code = code
        self.args = args
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        name = try f.required("name")
        code = try f.required("code")
        args = try f.optional("args")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("name", name)
        f.append("code", code)
        f.append("args", args)
        return .object(f)
    }
}

/// `ENTRY_PROCESS` (client → server): runs a processor atomically on one key.
public struct EntryProcess: MessageBody {
    public static let type = "ENTRY_PROCESS"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var mapName: String
    public var key: String
    public var processor: EntryProcessor

    public init(requestId: String, mapName: String, key: String, processor: EntryProcessor) {
        self.requestId = requestId
        self.mapName = mapName
        self.key = key
        self.processor = processor
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        key = try f.required("key")
        processor = try f.required("processor")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("key", key)
        f.append("processor", processor)
        return f
    }
}

/// `ENTRY_PROCESS_BATCH` (client → server): runs a processor on each of several keys.
public struct EntryProcessBatch: MessageBody {
    public static let type = "ENTRY_PROCESS_BATCH"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var mapName: String
    public var keys: [String]
    public var processor: EntryProcessor

    public init(requestId: String, mapName: String, keys: [String], processor: EntryProcessor) {
        self.requestId = requestId
        self.mapName = mapName
        self.keys = keys
        self.processor = processor
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        keys = try f.required("keys")
        processor = try f.required("processor")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("keys", keys)
        f.append("processor", processor)
        return f
    }
}

/// `ENTRY_PROCESS_RESPONSE` (server → client): the outcome of an `ENTRY_PROCESS`.
public struct EntryProcessResponse: MessageBody {
    public static let type = "ENTRY_PROCESS_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var success: Bool
    public var result: DataValue?
    public var newValue: DataValue?
    public var error: String?

    public init(requestId: String, success: Bool, result: DataValue? = nil, newValue: DataValue? = nil, error: String? = nil) {
        self.requestId = requestId
        self.success = success
        self.result = result
        self.newValue = newValue
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        success = try f.required("success")
        result = try f.optional("result")
        newValue = try f.optional("newValue")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("success", success)
        f.append("result", result)
        f.append("newValue", newValue)
        f.append("error", error)
        return f
    }
}

/// The outcome for one key of an `ENTRY_PROCESS_BATCH`.
public struct EntryProcessKeyResult: WireField, Hashable, Sendable {
    public var success: Bool
    public var result: DataValue?
    public var newValue: DataValue?
    public var error: String?

    public init(success: Bool, result: DataValue? = nil, newValue: DataValue? = nil, error: String? = nil) {
        self.success = success
        self.result = result
        self.newValue = newValue
        self.error = error
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        success = try f.required("success")
        result = try f.optional("result")
        newValue = try f.optional("newValue")
        error = try f.optional("error")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("success", success)
        f.append("result", result)
        f.append("newValue", newValue)
        f.append("error", error)
        return .object(f)
    }
}

/// `ENTRY_PROCESS_BATCH_RESPONSE` (server → client): the outcome per key of an
/// `ENTRY_PROCESS_BATCH`.
public struct EntryProcessBatchResponse: MessageBody {
    public static let type = "ENTRY_PROCESS_BATCH_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    /// Keyed by map key.
    public var results: WireDictionary<EntryProcessKeyResult>

    public init(requestId: String, results: WireDictionary<EntryProcessKeyResult>) {
        self.requestId = requestId
        self.results = results
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        results = try f.required("results")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("results", results)
        return f
    }
}
