@testable import DataPlane
import Tenancy
import TopGunCore

/// Records of every kind with the awkward parts a storage must keep exactly.
enum StorageFixtures {
    static let tenantA = TenantID("tenant-a")
    static let tenantB = TenantID("tenant-b")

    static func timestamp(_ millis: Int64, _ counter: Int64 = 0, _ node: String = "node-1") -> Timestamp {
        Timestamp(millis: millis, counter: counter, nodeId: node)
    }

    static func key(_ key: String, map: String = "todos", tenant: TenantID = tenantA) -> StorageKey {
        StorageKey(tenant: tenant, mapName: map, key: key)
    }

    /// A record in the key's real partition.
    static func record(_ key: StorageKey, _ value: StoredValue) -> StoredRecord {
        StoredRecord(key: key, partition: PartitionFunction.partition(forKey: key.key, tenantID: key.tenant.rawValue), value: value)
    }

    static func lww(_ key: String, _ value: DataValue?, millis: Int64 = 1_700_000_000_000, ttl: Double? = nil, map: String = "todos", tenant: TenantID = tenantA) -> StoredRecord {
        record(self.key(key, map: map, tenant: tenant), .lww(LWWRecord(value: value, timestamp: timestamp(millis), ttlMs: ttl)))
    }

    static let richValue: DataValue = .object(DataObject(fields: [
        .init(key: "title", value: .string("Write the storage — with ünïcödé 🚀")),
        .init(key: "done", value: .bool(false)),
        .init(key: "count", value: .int(-42)),
        .init(key: "big", value: .uint(UInt64.max)),
        .init(key: "ratio", value: .double(0.1)),
        .init(key: "whole", value: .double(3.0)),
        .init(key: "nothing", value: .null),
        .init(key: "bytes", value: .binary([0, 1, 2, 255])),
        .init(key: "tags", value: .array([.string("a"), .int(1), .array([])])),
        .init(key: "nested", value: .object(DataObject(fields: [.init(key: "deep", value: .object(DataObject()))]))),
    ]))

    /// One record of each kind and shape: live LWW, tombstone, TTL, live null, OR-Map entry
    /// with records (with and without TTL) and tombstones, an empty OR-Map entry, counters.
    static var everyKind: [StoredRecord] {
        [
            lww("live", richValue),
            lww("tombstone", nil, millis: 1_700_000_000_123),
            lww("ttl", .string("expires"), ttl: 1_500.5),
            lww("live-null", .null),
            record(key("tags", map: "labels"), .orMap(ORMapEntry(
                key: "tags",
                records: [
                    ORMapRecord(value: .string("red"), timestamp: timestamp(1_700_000_000_001, 3, "client-a"), tag: "1700000000001:3:client-a"),
                    ORMapRecord(value: richValue, timestamp: timestamp(1_700_000_000_002, 0, "client-b"), tag: "1700000000002:0:client-b", ttlMs: 60_000),
                ],
                tombstones: ["1699999999999:0:client-a", "1699999999998:7:client-c"]
            ))),
            record(key("empty", map: "labels"), .orMap(ORMapEntry(key: "empty", records: [], tombstones: ["1:0:x"]))),
            record(key("likes", map: "counters"), .counter(PNCounter(positive: ["node-1": 5, "node-2": 2.5], negative: ["node-1": 1]))),
            record(key("zero", map: "counters"), .counter(PNCounter())),
        ]
    }

    /// `count` LWW records named `prefix-i`, spread over partitions.
    static func many(_ count: Int, prefix: String = "k", tenant: TenantID = tenantA, version: Int64 = 0) -> [StoredRecord] {
        (0..<count).map { index in
            lww("\(prefix)-\(index)", .object(DataObject(fields: [
                .init(key: "i", value: .int(Int64(index))),
                .init(key: "v", value: .int(version)),
            ])), millis: 1_700_000_000_000 + version, tenant: tenant)
        }
    }

    /// Orders records by row identity, for comparing what storages return.
    static func sorted(_ records: [StoredRecord]) -> [StoredRecord] {
        // Decorate once: comparing StorageKeys field by field is slow in debug builds.
        records.map { ("\($0.key.tenant.rawValue)\u{1}\($0.key.mapName)\u{1}\($0.key.key)\u{1}\($0.value.kind.rawValue)", $0) }
            // By bytes: `<` leaves canonically equivalent keys unordered.
            .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            .map(\.1)
    }
}

/// Every record of a storage, all partitions.
func loadEverything(_ storage: any ServerStorage) async throws -> [StoredRecord] {
    var all: [StoredRecord] = []
    for partition in 0..<PartitionFunction.partitionCount {
        all += try await storage.loadPartition(partition)
    }
    return all
}
