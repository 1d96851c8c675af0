import TopGunCore

extension StorageKey {
    /// Longest tenant id, map name and key, in UTF-8 bytes. Together they stay well under
    /// PostgreSQL's B-tree entry limit (2,704 bytes), so no key can make an upsert fail for
    /// good and stall every flush behind it.
    public static let maxTenantBytes = 128
    public static let maxMapNameBytes = 512
    public static let maxKeyBytes = 1_024

    /// Throws `StorageError.invalidRecord` when this key cannot be stored: empty tenant or
    /// map name, a part longer than its limit, or a NUL character (PostgreSQL text cannot
    /// hold one).
    public func validate() throws(StorageError) {
        try Self.check(tenant.rawValue, "tenant id", limit: Self.maxTenantBytes, allowEmpty: false)
        try Self.check(mapName, "map name", limit: Self.maxMapNameBytes, allowEmpty: false)
        try Self.check(key, "key", limit: Self.maxKeyBytes, allowEmpty: true)
    }

    private static func check(_ text: String, _ what: String, limit: Int, allowEmpty: Bool) throws(StorageError) {
        let utf8 = text.utf8
        if !allowEmpty && utf8.isEmpty { throw .invalidRecord("empty \(what)") }
        if utf8.count > limit { throw .invalidRecord("\(what) longer than \(limit) bytes") }
        if utf8.contains(0) { throw .invalidRecord("\(what) contains a NUL character") }
    }
}

extension StoredRecord {
    /// Throws `StorageError.invalidRecord` when this record cannot be stored: an invalid key
    /// (`StorageKey.validate()`) or a partition outside `0..<PartitionFunction.partitionCount`.
    /// The node should reject such a write before it merges it; storages check again so that
    /// a bad record fails its batch before anything is written.
    public func validate() throws(StorageError) {
        try key.validate()
        guard (0..<PartitionFunction.partitionCount).contains(partition) else {
            throw .invalidRecord("partition \(partition) outside 0..<\(PartitionFunction.partitionCount)")
        }
    }
}
