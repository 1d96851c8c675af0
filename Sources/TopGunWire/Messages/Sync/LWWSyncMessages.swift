import TopGunCore

/// `SYNC_INIT` (client → server): starts the Merkle sync of one LWW map.
public struct SyncInit: MessageBody {
    public static let type = "SYNC_INIT"
    public static let envelope = MessageEnvelope.flat
    public var mapName: String
    /// Millis of the last server HLC the client saw; 0 = never.
    public var lastSyncTimestamp: Int64?
    /// Not in the catalog; present in the fixture (protocol.md §11.7).
    public var rootHash: UInt32?
    /// Not in the catalog; present in the fixture: root children by hex char.
    public var bucketHashes: WireDictionary<UInt32>?

    public init(
        mapName: String, lastSyncTimestamp: Int64? = nil, rootHash: UInt32? = nil,
        bucketHashes: WireDictionary<UInt32>? = nil
    ) {
        self.mapName = mapName
        self.lastSyncTimestamp = lastSyncTimestamp
        self.rootHash = rootHash
        self.bucketHashes = bucketHashes
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        lastSyncTimestamp = try f.optional("lastSyncTimestamp")
        rootHash = try f.optional("rootHash")
        bucketHashes = try f.optional("bucketHashes")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("lastSyncTimestamp", lastSyncTimestamp)
        f.append("rootHash", rootHash)
        f.append("bucketHashes", bucketHashes)
        return f
    }
}

/// `SYNC_RESP_ROOT` (server → client): the server's Merkle root of an LWW map and its HLC.
public struct SyncRespRoot: MessageBody {
    public static let type = "SYNC_RESP_ROOT"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var rootHash: UInt32
    public var timestamp: Timestamp

    public init(mapName: String, rootHash: UInt32, timestamp: Timestamp) {
        self.mapName = mapName
        self.rootHash = rootHash
        self.timestamp = timestamp
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        rootHash = try f.required("rootHash")
        timestamp = try f.required("timestamp")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("rootHash", rootHash)
        f.append("timestamp", timestamp)
        return f
    }
}

/// `MERKLE_REQ_BUCKET` (client → server): asks for the children (or leaf records) at `path`.
public struct MerkleReqBucket: MessageBody {
    public static let type = "MERKLE_REQ_BUCKET"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    /// Hex chars from the root; `""` is the root. Kept as any string.
    public var path: String

    public init(mapName: String, path: String) {
        self.mapName = mapName
        self.path = path
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        path = try f.required("path")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("path", path)
        return f
    }
}

/// `SYNC_RESP_BUCKETS` (server → client): child hashes of the node at `path`, by hex char.
public struct SyncRespBuckets: MessageBody {
    public static let type = "SYNC_RESP_BUCKETS"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var path: String
    public var buckets: WireDictionary<UInt32>

    public init(mapName: String, path: String, buckets: WireDictionary<UInt32>) {
        self.mapName = mapName
        self.path = path
        self.buckets = buckets
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        path = try f.required("path")
        buckets = try f.required("buckets")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("path", path)
        f.append("buckets", buckets)
        return f
    }
}

/// One key and its record in `SYNC_RESP_LEAF.records`.
public struct SyncLeafRecord: WireField, Hashable, Sendable {
    public var key: String
    public var record: LWWRecord

    public init(key: String, record: LWWRecord) {
        self.key = key
        self.record = record
    }

    public init(wire value: DataValue) throws(WireDecodingError) {
        let f = try DataObject(wire: value)
        key = try f.required("key")
        record = try f.required("record")
    }

    public var wireValue: DataValue {
        var f = DataObject()
        f.append("key", key)
        f.append("record", record)
        return .object(f)
    }
}

/// `SYNC_RESP_LEAF` (server → client): every record (tombstones included) of one leaf.
public struct SyncRespLeaf: MessageBody {
    public static let type = "SYNC_RESP_LEAF"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var path: String
    public var records: [SyncLeafRecord]

    public init(mapName: String, path: String, records: [SyncLeafRecord]) {
        self.mapName = mapName
        self.path = path
        self.records = records
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        path = try f.required("path")
        records = try f.required("records")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("path", path)
        f.append("records", records)
        return f
    }
}

/// `SYNC_RESET_REQUIRED` (server → client): the client must drop the map and sync from zero.
public struct SyncResetRequired: MessageBody {
    public static let type = "SYNC_RESET_REQUIRED"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    /// The legacy server leaves it out.
    public var reason: String?

    public init(mapName: String, reason: String? = nil) {
        self.mapName = mapName
        self.reason = reason
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        reason = try f.optional("reason")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("reason", reason)
        return f
    }
}

/// `GC_PRUNE` (server → client): prune tombstones older than `olderThan`.
public struct GCPrune: MessageBody {
    public static let type = "GC_PRUNE"
    public static let envelope = MessageEnvelope.payload
    public var olderThan: Timestamp

    public init(olderThan: Timestamp) { self.olderThan = olderThan }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        olderThan = try f.required("olderThan")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("olderThan", olderThan)
        return f
    }
}

/// `CLIENT_APPLY_ACK` (client → server): the highest server epoch the client has durably applied.
public struct ClientApplyAck: MessageBody {
    public static let type = "CLIENT_APPLY_ACK"
    public static let envelope = MessageEnvelope.flat
    public var cursor: Int64

    public init(cursor: Int64) { self.cursor = cursor }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        cursor = try f.required("cursor")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("cursor", cursor)
        return f
    }
}
