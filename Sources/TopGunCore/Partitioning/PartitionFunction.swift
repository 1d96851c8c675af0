/// Where a key lives: one of 271 partitions (protocol.md §5, design.md §3 step 4).
///
/// Unmodified clients compute `fnv1a(key) % 271`. The server adds a per-tenant offset so
/// that tenants spread over the cluster; since the offset is a rotation, the partition map
/// a tenant's client receives is rotated by the same amount and the client still routes
/// every key to its owner.
public enum PartitionFunction {
    public static let partitionCount = 271

    /// The partition an unmodified client computes for `key`.
    @inlinable
    public static func clientPartition(forKey key: String) -> Int {
        Int(Hashing.fnv1a(key) % UInt32(partitionCount))
    }

    /// The rotation applied to every partition of `tenantID`.
    @inlinable
    public static func tenantOffset(_ tenantID: String) -> Int {
        Int(Hashing.fnv1a(tenantID) % UInt32(partitionCount))
    }

    /// The server partition of `key` in `tenantID`: `(fnv1a(key) % 271 + fnv1a(tenant) % 271) % 271`.
    /// Both terms are below 271, so the sum cannot overflow.
    @inlinable
    public static func partition(forKey key: String, tenantID: String) -> Int {
        serverPartition(forClientPartition: clientPartition(forKey: key), tenantID: tenantID)
    }

    /// The server partition that a tenant's client partition `p` stands for.
    @inlinable
    public static func serverPartition(forClientPartition p: Int, tenantID: String) -> Int {
        (p + tenantOffset(tenantID)) % partitionCount
    }

    /// The inverse rotation: which client partition id names server partition `p`.
    @inlinable
    public static func clientPartition(forServerPartition p: Int, tenantID: String) -> Int {
        (p - tenantOffset(tenantID) + partitionCount) % partitionCount
    }
}
