import TopGunCore

/// `AUTH_REQUIRED` (server → client): sent on connect when a token is needed.
public struct AuthRequired: MessageBody {
    public static let type = "AUTH_REQUIRED"
    public static let envelope = MessageEnvelope.flat
    public var reason: String?

    public init(reason: String? = nil) { self.reason = reason }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        reason = try f.optional("reason")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("reason", reason)
        return f
    }
}

/// `AUTH` (client → server): the app's JWT.
public struct Auth: MessageBody {
    public static let type = "AUTH"
    public static let envelope = MessageEnvelope.flat
    public var token: String
    public var protocolVersion: Int64?
    public var deviceToken: String?

    public init(token: String, protocolVersion: Int64? = nil, deviceToken: String? = nil) {
        self.token = token
        self.protocolVersion = protocolVersion
        self.deviceToken = deviceToken
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        token = try f.required("token")
        protocolVersion = try f.optional("protocolVersion")
        deviceToken = try f.optional("deviceToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("token", token)
        f.append("protocolVersion", protocolVersion)
        f.append("deviceToken", deviceToken)
        return f
    }
}

/// `PING` (client → server): heartbeat every 5 s with the client's clock.
public struct Ping: MessageBody {
    public static let type = "PING"
    public static let envelope = MessageEnvelope.flat
    public var timestamp: Double

    public init(timestamp: Double) { self.timestamp = timestamp }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("timestamp", timestamp)
        return f
    }
}

/// `PONG` (server → client): echoes the ping's timestamp and adds the server's clock.
public struct Pong: MessageBody {
    public static let type = "PONG"
    public static let envelope = MessageEnvelope.flat
    public var timestamp: Double
    public var serverTime: Double

    public init(timestamp: Double, serverTime: Double) {
        self.timestamp = timestamp
        self.serverTime = serverTime
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        timestamp = try f.required("timestamp")
        serverTime = try f.required("serverTime")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("timestamp", timestamp)
        f.append("serverTime", serverTime)
        return f
    }
}

/// `AUTH_ACK` (server → client): the connection is authenticated.
public struct AuthAck: MessageBody {
    public static let type = "AUTH_ACK"
    public static let envelope = MessageEnvelope.flat
    /// The legacy server sends 1.
    public var protocolVersion: Int64?
    /// The JWT subject.
    public var userId: String?
    public var deviceId: String?
    /// Only when a device token was minted or rotated.
    public var deviceToken: String?

    public init(protocolVersion: Int64? = nil, userId: String? = nil, deviceId: String? = nil, deviceToken: String? = nil) {
        self.protocolVersion = protocolVersion
        self.userId = userId
        self.deviceId = deviceId
        self.deviceToken = deviceToken
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        protocolVersion = try f.optional("protocolVersion")
        userId = try f.optional("userId")
        deviceId = try f.optional("deviceId")
        deviceToken = try f.optional("deviceToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("protocolVersion", protocolVersion)
        f.append("userId", userId)
        f.append("deviceId", deviceId)
        f.append("deviceToken", deviceToken)
        return f
    }
}

/// `AUTH_FAIL` (server → client): the token was rejected; the server closes the socket.
public struct AuthFail: MessageBody {
    public static let type = "AUTH_FAIL"
    public static let envelope = MessageEnvelope.flat
    public var error: String?
    public var code: Int64?

    public init(error: String? = nil, code: Int64? = nil) {
        self.error = error
        self.code = code
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        error = try f.optional("error")
        code = try f.optional("code")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("error", error)
        f.append("code", code)
        return f
    }
}

/// `DEVICE_HELLO` (client → server): a token-less client introduces its device.
public struct DeviceHello: MessageBody {
    public static let type = "DEVICE_HELLO"
    public static let envelope = MessageEnvelope.flat
    /// Absent on the first connect ever.
    public var deviceToken: String?

    public init(deviceToken: String? = nil) { self.deviceToken = deviceToken }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        deviceToken = try f.optional("deviceToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("deviceToken", deviceToken)
        return f
    }
}

/// `DEVICE_ACK` (server → client): the device identity bound to a token-less connection.
public struct DeviceAck: MessageBody {
    public static let type = "DEVICE_ACK"
    public static let envelope = MessageEnvelope.flat
    public var deviceId: String?
    public var deviceToken: String?

    public init(deviceId: String? = nil, deviceToken: String? = nil) {
        self.deviceId = deviceId
        self.deviceToken = deviceToken
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        deviceId = try f.optional("deviceId")
        deviceToken = try f.optional("deviceToken")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("deviceId", deviceId)
        f.append("deviceToken", deviceToken)
        return f
    }
}

/// `ERROR` (server → client): a request failed; `code` follows protocol.md §15.
public struct ErrorMessage: MessageBody {
    public static let type = "ERROR"
    public static let envelope = MessageEnvelope.payload
    public var code: Int64
    public var message: String
    public var details: DataValue?

    public init(code: Int64, message: String, details: DataValue? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        code = try f.required("code")
        message = try f.required("message")
        details = try f.optional("details")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("code", code)
        f.append("message", message)
        f.append("details", details)
        return f
    }
}
