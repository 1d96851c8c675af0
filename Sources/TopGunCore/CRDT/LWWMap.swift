/// A last-write-wins map with its Merkle tree (protocol.md §3.1): the server's copy of one
/// LWW map of one tenant.
///
/// Merges keep the writer's timestamp exactly, so the client, the server and their Merkle
/// trees agree; deletes are tombstones, which win merges like any newer write.
public struct LWWMap: Sendable {
    public private(set) var records: [String: LWWRecord] = [:]
    public private(set) var merkleTree = MerkleTree()

    public init() {}

    public var count: Int { records.count }

    /// Merges a remote record; returns whether it replaced the local one.
    @discardableResult
    public mutating func merge(key: String, record: LWWRecord) -> Bool {
        mergeReplacing(key: key, record: record).merged
    }

    /// Merges a remote record; returns whether it won, and the record it replaced (nil for a
    /// new key). One dictionary lookup, whether the key is new or not.
    public mutating func mergeReplacing(key: String, record: LWWRecord) -> (merged: Bool, previous: LWWRecord?) {
        var outcome: (merged: Bool, previous: LWWRecord?) = (false, nil)
        Self.merge(record, into: &records[key], outcome: &outcome)
        if outcome.merged {
            merkleTree.update(
                key: key, entryHash: MerkleEntryHash.lww(key: key, timestamp: record.timestamp),
                previous: outcome.previous.map { MerkleEntryHash.lww(key: key, timestamp: $0.timestamp) })
        }
        return outcome
    }

    private static func merge(_ record: LWWRecord, into slot: inout LWWRecord?, outcome: inout (merged: Bool, previous: LWWRecord?)) {
        if let local = slot, !record.supersedes(local) { return }
        outcome = (true, slot)
        slot = record
    }

    /// The Merkle entry hash of `key` (nil when the map does not hold it).
    public func entryHash(of key: String) -> UInt32? {
        records[key].map { MerkleEntryHash.lww(key: key, timestamp: $0.timestamp) }
    }

    /// The stored record, tombstones and expired records included.
    public func record(forKey key: String) -> LWWRecord? { records[key] }

    /// The live value: nil when missing, deleted or expired.
    public func value(forKey key: String, nowMillis: Int64) -> DataValue? {
        guard let record = records[key], !record.isExpired(nowMillis: nowMillis) else { return nil }
        return record.value
    }

    /// Removes tombstones older than `cutoff` (safe once every replica has seen them);
    /// returns the removed keys.
    @discardableResult
    public mutating func pruneTombstones(olderThan cutoff: Timestamp) -> [String] {
        let removed = records.compactMap { key, record in record.isTombstone && record.timestamp < cutoff ? key : nil }
        for key in removed {
            if let record = records.removeValue(forKey: key) {
                merkleTree.remove(key: key, entryHash: MerkleEntryHash.lww(key: key, timestamp: record.timestamp))
            }
        }
        return removed
    }

    /// Merges every record of `other`.
    public mutating func merge(_ other: LWWMap) {
        for (key, record) in other.records { merge(key: key, record: record) }
    }
}
