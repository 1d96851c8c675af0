import TopGunCore

/// `ORMAP_SYNC_INIT` (client → server): starts the Merkle sync of one OR map with the
/// client's root and root-children hashes.
public struct ORMapSyncInit: MessageBody {
    public static let type = "ORMAP_SYNC_INIT"
    public static let envelope = MessageEnvelope.flat
    public var mapName: String
    public var rootHash: UInt32
    /// The root's children, by hex char.
    public var bucketHashes: WireDictionary<UInt32>
    public var lastSyncTimestamp: Int64?
    /// HEAD client only.
    public var claimedEpoch: Int64?

    public init(
        mapName: String, rootHash: UInt32, bucketHashes: WireDictionary<UInt32>, lastSyncTimestamp: Int64? = nil,
        claimedEpoch: Int64? = nil
    ) {
        self.mapName = mapName
        self.rootHash = rootHash
        self.bucketHashes = bucketHashes
        self.lastSyncTimestamp = lastSyncTimestamp
        self.claimedEpoch = claimedEpoch
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        rootHash = try f.required("rootHash")
        bucketHashes = try f.required("bucketHashes")
        lastSyncTimestamp = try f.optional("lastSyncTimestamp")
        claimedEpoch = try f.optional("claimedEpoch")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("rootHash", rootHash)
        f.append("bucketHashes", bucketHashes)
        f.append("lastSyncTimestamp", lastSyncTimestamp)
        f.append("claimedEpoch", claimedEpoch)
        return f
    }
}

/// `ORMAP_SYNC_RESP_ROOT` (server → client): the server's OR-map root and its HLC.
public struct ORMapSyncRespRoot: MessageBody {
    public static let type = "ORMAP_SYNC_RESP_ROOT"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var rootHash: UInt32
    public var timestamp: Timestamp
    public var coveringEpoch: Int64?
    /// Rust server only: the client must drop its copy and re-sync.
    public var fullResync: Bool?

    public init(
        mapName: String, rootHash: UInt32, timestamp: Timestamp, coveringEpoch: Int64? = nil, fullResync: Bool? = nil
    ) {
        self.mapName = mapName
        self.rootHash = rootHash
        self.timestamp = timestamp
        self.coveringEpoch = coveringEpoch
        self.fullResync = fullResync
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        rootHash = try f.required("rootHash")
        timestamp = try f.required("timestamp")
        coveringEpoch = try f.optional("coveringEpoch")
        fullResync = try f.optional("fullResync")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("rootHash", rootHash)
        f.append("timestamp", timestamp)
        f.append("coveringEpoch", coveringEpoch)
        f.append("fullResync", fullResync)
        return f
    }
}

/// `ORMAP_MERKLE_REQ_BUCKET` (client → server): asks for the node at `path` of an OR map.
public struct ORMapMerkleReqBucket: MessageBody {
    public static let type = "ORMAP_MERKLE_REQ_BUCKET"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
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

/// `ORMAP_SYNC_RESP_BUCKETS` (server → client): child hashes of an OR-map node, by hex char.
public struct ORMapSyncRespBuckets: MessageBody {
    public static let type = "ORMAP_SYNC_RESP_BUCKETS"
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

/// `ORMAP_SYNC_RESP_LEAF` (server → client): every key of one OR-map leaf with its records
/// and tombstones.
public struct ORMapSyncRespLeaf: MessageBody {
    public static let type = "ORMAP_SYNC_RESP_LEAF"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var path: String
    public var entries: [ORMapEntry]
    public var coveringEpoch: Int64?

    public init(mapName: String, path: String, entries: [ORMapEntry], coveringEpoch: Int64? = nil) {
        self.mapName = mapName
        self.path = path
        self.entries = entries
        self.coveringEpoch = coveringEpoch
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        path = try f.required("path")
        entries = try f.required("entries")
        coveringEpoch = try f.optional("coveringEpoch")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("path", path)
        f.append("entries", entries)
        f.append("coveringEpoch", coveringEpoch)
        return f
    }
}

/// `ORMAP_DIFF_REQUEST` (client → server): asks for the entries of some keys (defined; the
/// client never sends it).
public struct ORMapDiffRequest: MessageBody {
    public static let type = "ORMAP_DIFF_REQUEST"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var keys: [String]

    public init(mapName: String, keys: [String]) {
        self.mapName = mapName
        self.keys = keys
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        keys = try f.required("keys")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("keys", keys)
        return f
    }
}

/// `ORMAP_DIFF_RESPONSE` (server → client): the entries asked for by `ORMAP_DIFF_REQUEST`.
public struct ORMapDiffResponse: MessageBody {
    public static let type = "ORMAP_DIFF_RESPONSE"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var entries: [ORMapEntry]
    public var coveringEpoch: Int64?

    public init(mapName: String, entries: [ORMapEntry], coveringEpoch: Int64? = nil) {
        self.mapName = mapName
        self.entries = entries
        self.coveringEpoch = coveringEpoch
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        entries = try f.required("entries")
        coveringEpoch = try f.optional("coveringEpoch")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("entries", entries)
        f.append("coveringEpoch", coveringEpoch)
        return f
    }
}

/// `ORMAP_PUSH_DIFF` (client → server): the client's records and tombstones for some keys.
public struct ORMapPushDiff: MessageBody {
    public static let type = "ORMAP_PUSH_DIFF"
    public static let envelope = MessageEnvelope.payload
    public var mapName: String
    public var entries: [ORMapEntry]

    public init(mapName: String, entries: [ORMapEntry]) {
        self.mapName = mapName
        self.entries = entries
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        mapName = try f.required("mapName")
        entries = try f.required("entries")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("mapName", mapName)
        f.append("entries", entries)
        return f
    }
}
