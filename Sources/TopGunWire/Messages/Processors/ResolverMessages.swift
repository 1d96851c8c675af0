import TopGunCore

/// A conflict resolver as a client registers it: a name and a JavaScript merge function.
public struct ConflictResolverDefinition: WireField, Hashable, Sendable {
    /// 1...100 characters; `builtin:*` names the built-in resolvers.
    public var name: String
    /// At most 50 000 characters of JavaScript.
    public var code: String
    /// 0...100; higher runs first.
    public var priority: Int64?
    public var keyPattern: String?

    public init(name: String, code: String, priority: Int64? = nil, keyPattern: String? = nil) {
        self.name = name
        self.code = code
        self.priority = priority
        self.keyPattern = keyPattern
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        name = try f.required("name")
        code = try f.required("code")
        priority = try f.optional("priority")
        keyPattern = try f.optional("keyPattern")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("name", name)
        f.append("code", code)
        f.append("priority", priority)
        f.append("keyPattern", keyPattern)
        return .object(f)
    }
}

/// A registered resolver as `LIST_RESOLVERS_RESPONSE` describes it (without its code).
public struct ResolverInfo: WireField, Hashable, Sendable {
    public var mapName: String
    public var name: String
    public var priority: Int64?
    public var keyPattern: String?

    public init(mapName: String, name: String, priority: Int64? = nil, keyPattern: String? = nil) {
        self.mapName = mapName
        self.name = name
        self.priority = priority
        self.keyPattern = keyPattern
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        mapName = try f.required("mapName")
        name = try f.required("name")
        priority = try f.optional("priority")
        keyPattern = try f.optional("keyPattern")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("name", name)
        f.append("priority", priority)
        f.append("keyPattern", keyPattern)
        return .object(f)
    }
}

/// `REGISTER_RESOLVER` (client → server): installs a conflict resolver on a map.
public struct RegisterResolver: MessageBody {
    public static let type = "REGISTER_RESOLVER"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var mapName: String
    public var resolver: ConflictResolverDefinition

    public init(requestId: String, mapName: String, resolver: ConflictResolverDefinition) {
        self.requestId = requestId
        self.mapName = mapName
        self.resolver = resolver
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        resolver = try f.required("resolver")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("resolver", resolver)
        return f
    }
}

/// `REGISTER_RESOLVER_RESPONSE` (server → client): whether the resolver was installed.
public struct RegisterResolverResponse: MessageBody {
    public static let type = "REGISTER_RESOLVER_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var success: Bool
    public var error: String?

    public init(requestId: String, success: Bool, error: String? = nil) {
        self.requestId = requestId
        self.success = success
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        success = try f.required("success")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("success", success)
        f.append("error", error)
        return f
    }
}

/// `UNREGISTER_RESOLVER` (client → server): removes a conflict resolver from a map.
public struct UnregisterResolver: MessageBody {
    public static let type = "UNREGISTER_RESOLVER"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var mapName: String
    public var resolverName: String

    public init(requestId: String, mapName: String, resolverName: String) {
        self.requestId = requestId
        self.mapName = mapName
        self.resolverName = resolverName
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.required("mapName")
        resolverName = try f.required("resolverName")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        f.append("resolverName", resolverName)
        return f
    }
}

/// `UNREGISTER_RESOLVER_RESPONSE` (server → client): whether the resolver was removed.
public struct UnregisterResolverResponse: MessageBody {
    public static let type = "UNREGISTER_RESOLVER_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var success: Bool
    public var error: String?

    public init(requestId: String, success: Bool, error: String? = nil) {
        self.requestId = requestId
        self.success = success
        self.error = error
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        success = try f.required("success")
        error = try f.optional("error")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("success", success)
        f.append("error", error)
        return f
    }
}

/// `LIST_RESOLVERS` (client → server): asks for the registered resolvers (of one map).
public struct ListResolvers: MessageBody {
    public static let type = "LIST_RESOLVERS"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var mapName: String?

    public init(requestId: String, mapName: String? = nil) {
        self.requestId = requestId
        self.mapName = mapName
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        mapName = try f.optional("mapName")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("mapName", mapName)
        return f
    }
}

/// `LIST_RESOLVERS_RESPONSE` (server → client): the registered resolvers.
public struct ListResolversResponse: MessageBody {
    public static let type = "LIST_RESOLVERS_RESPONSE"
    public static let envelope = MessageEnvelope.flat
    public var requestId: String
    public var resolvers: [ResolverInfo]

    public init(requestId: String, resolvers: [ResolverInfo]) {
        self.requestId = requestId
        self.resolvers = resolvers
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        requestId = try f.required("requestId")
        resolvers = try f.required("resolvers")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("requestId", requestId)
        f.append("resolvers", resolvers)
        return f
    }
}
