@testable import DataPlane
import Tenancy
import TopGunCore

/// The data the simulated clients write: a few LWW keys and a few OR-Map keys of one tenant,
/// so that writes collide on rows (coalescing, merges, stale states) and partitions.
enum SimRecords {
    static let tenant = TenantID("acme")
    static let lwwMap = "lww"
    static let orMap = "tags"
    static let lwwKeys = (0..<6).map { "k\($0)" }
    static let orKeys = (0..<3).map { "o\($0)" }

    static func storageKey(map: String, key: String) -> StorageKey {
        StorageKey(tenant: tenant, mapName: map, key: key)
    }

    static func partition(of key: String) -> Int {
        PartitionFunction.partition(forKey: key, tenantID: tenant.rawValue)
    }

    /// Merges `incoming` into `rows` as a map store does (CRDT merge); returns the merged row
    /// when it changed anything.
    static func merge(_ incoming: StoredRecord, into rows: inout [RecordIdentity: StoredRecord]) -> StoredRecord? {
        let identity = incoming.identity
        guard let existing = rows[identity] else {
            rows[identity] = incoming
            return incoming
        }
        guard let merged = existing.value.merging(incoming.value) else { return nil }
        var updated = existing
        updated.value = merged
        rows[identity] = updated
        return updated
    }

    /// Rows in a canonical order (identity), for determinism and comparisons.
    static func sorted(_ rows: some Collection<StoredRecord>) -> [StoredRecord] {
        rows.sorted { ($0.key, $0.value.kind.rawValue) < ($1.key, $1.value.kind.rawValue) }
    }

    /// Values by identity, ignoring what is not data (sequence, storage hint).
    static func values(_ rows: some Sequence<StoredRecord>) -> [RecordIdentity: StoredValue] {
        var values: [RecordIdentity: StoredValue] = [:]
        for row in rows { values[row.identity] = row.value }
        return values
    }

    /// The Merkle leaves a client would compare for these rows, per map (TopGunCore's entry
    /// hashes: LWW by key and timestamp, tombstones included; OR-Map by its records).
    static func merkleLeaves(_ rows: some Sequence<StoredRecord>) -> [String: [Int: MerkleHashes.Leaf]] {
        var trees: [String: MerkleTree] = [:]
        for row in rows {
            let entryHash: UInt32
            switch row.value {
            case .lww(let record): entryHash = MerkleEntryHash.lww(key: row.key.key, timestamp: record.timestamp)
            case .orMap(let entry): entryHash = MerkleEntryHash.orMap(key: row.key.key, records: entry.records)
            case .counter: continue
            }
            trees[row.key.mapName, default: MerkleTree()].update(key: row.key.key, entryHash: entryHash, previous: nil)
        }
        return trees.mapValues(\.hashes.leaves)
    }
}

/// One client write, as the harness remembers it for the invariants.
struct SimWrite {
    enum Kind: Equatable {
        case put
        case remove
        case orAdd
        /// Tombstones the tag of an earlier add of the same key.
        case orRemove(tag: String)
    }

    var id: Int
    var key: StorageKey
    var partition: Int
    var kind: Kind
    /// Unique and increasing across the run: "not lost" means a state at least this new.
    var timestamp: Timestamp
    /// PERSISTED or REPLICATED.
    var persisted: Bool
    var value: Int64

    var identity: RecordIdentity { RecordIdentity(key: key, kind: kind == .put || kind == .remove ? .lww : .orMap) }

    /// The row this write alone would produce (merged into the current state by its owner).
    var record: StoredRecord {
        let stored: StoredValue
        switch kind {
        case .put: stored = .lww(LWWRecord(value: .int(value), timestamp: timestamp))
        case .remove: stored = .lww(LWWRecord(value: nil, timestamp: timestamp))
        case .orAdd:
            stored = .orMap(ORMapEntry(key: key.key, records: [ORMapRecord(value: .int(value), timestamp: timestamp, tag: timestamp.description)], tombstones: []))
        case .orRemove(let tag): stored = .orMap(ORMapEntry(key: key.key, records: [], tombstones: [tag]))
        }
        return StoredRecord(key: key, partition: partition, value: stored)
    }

    /// Whether `value` (a row's state) contains this write or something that supersedes it.
    func isCovered(by value: StoredValue?) -> Bool {
        switch (kind, value) {
        case (.put, .lww(let record)?), (.remove, .lww(let record)?):
            return record.timestamp >= timestamp
        case (.orAdd, .orMap(let entry)?):
            let tag = timestamp.description
            return entry.records.contains { $0.tag == tag } || entry.tombstones.contains(tag)
        case (.orRemove(let tag), .orMap(let entry)?):
            return entry.tombstones.contains(tag)
        default:
            return false
        }
    }

    var summary: String {
        let kindText: String
        switch kind {
        case .put: kindText = "PUT"
        case .remove: kindText = "REMOVE"
        case .orAdd: kindText = "OR_ADD"
        case .orRemove(let tag): kindText = "OR_REMOVE(\(tag))"
        }
        return "write #\(id) \(kindText) \(key.mapName)/\(key.key) (partition \(partition)) ts \(timestamp) at \(persisted ? "PERSISTED" : "REPLICATED")"
    }
}

/// What the owner knew when it applied a write, and when it met its concern: the invariants
/// judge an acknowledgement by it.
struct SimAckFacts {
    /// The epoch under which the owner held the partition.
    var epoch: Int64
    /// The write changed nothing at the owner (its row held a newer state already).
    var noOp: Bool
    /// Replicas the owner's table named for the partition.
    var replicas: Int
    /// The owner lost its lease (and took a new one) between applying and acknowledging.
    var acrossLeaseLoss = false
    /// When the owner applied the write.
    var appliedAt: Int64 = 0
    /// The acknowledgement waited for the replicas (REPLICATED with a replica named and a
    /// change to send), not for the commit.
    var viaReplicas = false
    /// When the owner met the concern (a forwarded answer travels a while more).
    var durableAt: Int64 = 0
    /// The owner's quorum term when it applied the write (`QuorumWatch`).
    var quorumTerm: UInt64?
    /// Ground truth when the owner met the concern: it had been cut off from most of its
    /// table's nodes for a whole quorum window (it cannot have heard from them since).
    var cutOffFromMajority = false
}

/// An acknowledgement a client received.
struct SimAck {
    var write: Int
    /// The owner that met the write concern.
    var acker: NodeID
    var facts: SimAckFacts
    /// When the client heard it.
    var time: Int64
    var epoch: Int64 { facts.epoch }
}
