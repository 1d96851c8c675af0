import TopGunCore

/// `LOCK_REQUEST` (client → server): asks for a named distributed lock.
public struct LockRequest: MessageBody {
    public static let type = "LOCK_REQUEST"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var name: String
    /// Lease in ms (client default 10 000).
    public var ttl: Int64?

    public init(requestId: String, name: String, ttl: Int64? = nil) {
        self.requestId = requestId
        self.name = name
        self.ttl = ttl
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        name = try f.required("name")
        ttl = try f.optional("ttl")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("name", name)
        f.append("ttl", ttl)
        return f
    }
}

/// `LOCK_RELEASE` (client → server): releases a held lock.
public struct LockRelease: MessageBody {
    public static let type = "LOCK_RELEASE"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String?
    public var name: String
    public var fencingToken: Int64

    public init(requestId: String? = nil, name: String, fencingToken: Int64) {
        self.requestId = requestId
        self.name = name
        self.fencingToken = fencingToken
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.optional("requestId")
        name = try f.required("name")
        fencingToken = try f.required("fencingToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("name", name)
        f.append("fencingToken", fencingToken)
        return f
    }
}

/// `LOCK_GRANTED` (server → client): the lock is held, with its fencing token.
public struct LockGranted: MessageBody {
    public static let type = "LOCK_GRANTED"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var name: String
    public var fencingToken: Int64

    public init(requestId: String, name: String, fencingToken: Int64) {
        self.requestId = requestId
        self.name = name
        self.fencingToken = fencingToken
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        name = try f.required("name")
        fencingToken = try f.required("fencingToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("name", name)
        f.append("fencingToken", fencingToken)
        return f
    }
}

/// `LOCK_RELEASED` (server → client): the answer to a `LOCK_RELEASE`.
public struct LockReleased: MessageBody {
    public static let type = "LOCK_RELEASED"
    public static let envelope = MessageEnvelope.payload
    public var requestId: String
    public var name: String
    public var success: Bool

    public init(requestId: String, name: String, success: Bool) {
        self.requestId = requestId
        self.name = name
        self.success = success
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        name = try f.required("name")
        success = try f.required("success")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("name", name)
        f.append("success", success)
        return f
    }
}
