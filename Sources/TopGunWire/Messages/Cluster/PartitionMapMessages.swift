import TopGunCore

/// `PARTITION_MAP_REQUEST` (client → server): asks for the partition map when the server's is
/// newer than `currentVersion`. The payload may be absent (read as empty).
public struct PartitionMapRequest: MessageBody {
    public static let type = "PARTITION_MAP_REQUEST"
    public static let envelope = MessageEnvelope.payload
    public var currentVersion: Int64?

    public init(currentVersion: Int64? = nil) { self.currentVersion = currentVersion }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        currentVersion = try f.optional("currentVersion")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("currentVersion", currentVersion)
        return f
    }
}

/// The state of a cluster member in a partition map.
public enum NodeStatus: String, Sendable, WireStringEnum {
    case active = "ACTIVE"
    case joining = "JOINING"
    case leaving = "LEAVING"
    case suspected = "SUSPECTED"
    case failed = "FAILED"
}

/// Where clients reach a cluster member.
public struct NodeEndpoints: WireField, Hashable, Sendable {
    public var websocket: String
    public var http: String?

    public init(websocket: String, http: String? = nil) {
        self.websocket = websocket
        self.http = http
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        websocket = try f.required("websocket")
        http = try f.optional("http")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("websocket", websocket)
        f.append("http", http)
        return .object(f)
    }
}

/// One member of the cluster in `PARTITION_MAP.nodes`.
public struct PartitionMapNode: WireField, Hashable, Sendable {
    public var nodeId: String
    public var endpoints: NodeEndpoints
    public var status: NodeStatus

    public init(nodeId: String, endpoints: NodeEndpoints, status: NodeStatus) {
        self.nodeId = nodeId
        self.endpoints = endpoints
        self.status = status
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        nodeId = try f.required("nodeId")
        endpoints = try f.required("endpoints")
        status = try f.required("status")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("nodeId", nodeId)
        f.append("endpoints", endpoints)
        f.append("status", status)
        return .object(f)
    }
}

/// One partition's owner and backups in `PARTITION_MAP.partitions`.
public struct PartitionMapEntry: WireField, Hashable, Sendable {
    public var partitionId: Int64
    public var ownerNodeId: String
    public var backupNodeIds: [String]

    public init(partitionId: Int64, ownerNodeId: String, backupNodeIds: [String]) {
        self.partitionId = partitionId
        self.ownerNodeId = ownerNodeId
        self.backupNodeIds = backupNodeIds
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        partitionId = try f.required("partitionId")
        ownerNodeId = try f.required("ownerNodeId")
        backupNodeIds = try f.required("backupNodeIds")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("partitionId", partitionId)
        f.append("ownerNodeId", ownerNodeId)
        f.append("backupNodeIds", backupNodeIds)
        return .object(f)
    }
}

/// `PARTITION_MAP` (server → client): which member owns each of the 271 partitions.
public struct PartitionMap: MessageBody {
    public static let type = "PARTITION_MAP"
    public static let envelope = MessageEnvelope.payload
    public var version: Int64
    /// 271.
    public var partitionCount: Int64
    public var nodes: [PartitionMapNode]
    public var partitions: [PartitionMapEntry]
    /// Ms since the epoch.
    public var generatedAt: Int64

    public init(
        version: Int64, partitionCount: Int64, nodes: [PartitionMapNode], partitions: [PartitionMapEntry],
        generatedAt: Int64
    ) {
        self.version = version
        self.partitionCount = partitionCount
        self.nodes = nodes
        self.partitions = partitions
        self.generatedAt = generatedAt
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        version = try f.required("version")
        partitionCount = try f.required("partitionCount")
        nodes = try f.required("nodes")
        partitions = try f.required("partitions")
        generatedAt = try f.required("generatedAt")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("version", version)
        f.append("partitionCount", partitionCount)
        f.append("nodes", nodes)
        f.append("partitions", partitions)
        f.append("generatedAt", generatedAt)
        return f
    }
}

/// Why a partition changed owner.
public enum PartitionChangeReason: String, Sendable, WireStringEnum {
    case rebalance = "REBALANCE"
    case failover = "FAILOVER"
    case join = "JOIN"
    case leave = "LEAVE"
}

/// One owner change in `PARTITION_MAP_DELTA.changes`.
public struct PartitionChange: WireField, Hashable, Sendable {
    public var partitionId: Int64
    public var previousOwner: String
    public var newOwner: String
    public var reason: PartitionChangeReason

    public init(partitionId: Int64, previousOwner: String, newOwner: String, reason: PartitionChangeReason) {
        self.partitionId = partitionId
        self.previousOwner = previousOwner
        self.newOwner = newOwner
        self.reason = reason
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        partitionId = try f.required("partitionId")
        previousOwner = try f.required("previousOwner")
        newOwner = try f.required("newOwner")
        reason = try f.required("reason")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("partitionId", partitionId)
        f.append("previousOwner", previousOwner)
        f.append("newOwner", newOwner)
        f.append("reason", reason)
        return .object(f)
    }
}

/// `PARTITION_MAP_DELTA` (server → client): owner changes since `previousVersion` (the client
/// understands it; no upstream server sends it).
public struct PartitionMapDelta: MessageBody {
    public static let type = "PARTITION_MAP_DELTA"
    public static let envelope = MessageEnvelope.payload
    public var version: Int64
    public var previousVersion: Int64
    public var changes: [PartitionChange]
    /// Ms since the epoch.
    public var timestamp: Int64

    public init(version: Int64, previousVersion: Int64, changes: [PartitionChange], timestamp: Int64) {
        self.version = version
        self.previousVersion = previousVersion
        self.changes = changes
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        version = try f.required("version")
        previousVersion = try f.required("previousVersion")
        changes = try f.required("changes")
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("version", version)
        f.append("previousVersion", previousVersion)
        f.append("changes", changes)
        f.append("timestamp", timestamp)
        return f
    }
}
