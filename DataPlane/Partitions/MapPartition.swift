import TopGunCore

/// One map's records in one partition (design.md §3), with that partition's part of the
/// map's Merkle tree: what a partition holds of each map, and the unit it is loaded,
/// streamed and dropped in. A map's whole tree is the sum of its parts' leaves
/// (`MerkleHashes.summing`); its query results are read across its parts.
///
/// A map holds LWW records or OR-Map entries, never both (`MapKind`); the part of the other
/// kind stays empty.
struct MapPartition: Sendable {
    let partition: Int
    var lww = LWWMap()
    /// Reports its leaf changes: the map keeps its whole tree's hashes from them.
    var orMap = ORMap(reportingLeafChanges: true)

    init(partition: Int) {
        self.partition = partition
    }
}

/// A map's parts by partition, allocated as keys arrive: a small map touches a few of the
/// 271 partitions and pays for those only.
struct PartitionParts: Sendable {
    /// Position in `parts` of each partition's part; -1 when absent.
    private var positions = [Int16](repeating: -1, count: PartitionFunction.partitionCount)
    private(set) var parts: ContiguousArray<MapPartition> = []

    init() {}

    subscript(partition: Int) -> MapPartition? {
        let position = positions[partition]
        return position < 0 ? nil : parts[Int(position)]
    }

    /// Runs `body` on the part of `partition` in place, creating it when absent.
    mutating func update<Result>(_ partition: Int, _ body: (inout MapPartition) throws -> Result) rethrows -> Result {
        var position = Int(positions[partition])
        if position < 0 {
            position = parts.count
            parts.append(MapPartition(partition: partition))
            positions[partition] = Int16(position)
        }
        return try body(&parts[position])
    }

    /// Runs `body` on the part of `partition` in place, when there is one.
    mutating func updateIfPresent<Result>(_ partition: Int, _ body: (inout MapPartition) throws -> Result) rethrows -> Result? {
        let position = Int(positions[partition])
        guard position >= 0 else { return nil }
        return try body(&parts[position])
    }

    /// Reads the part of `partition` in place (no copy of it), when there is one.
    func read<Result>(_ partition: Int, _ body: (MapPartition) throws -> Result) rethrows -> Result? {
        let position = Int(positions[partition])
        guard position >= 0 else { return nil }
        return try body(parts[position])
    }

    /// Runs `body` on every part in place.
    mutating func updateEach(_ body: (inout MapPartition) throws -> Void) rethrows {
        for index in parts.indices { try body(&parts[index]) }
    }

    /// Takes the part of `partition` out (nil when absent).
    @discardableResult
    mutating func remove(_ partition: Int) -> MapPartition? {
        let position = Int(positions[partition])
        guard position >= 0 else { return nil }
        positions[partition] = -1
        let last = parts.count - 1
        if position != last {
            parts.swapAt(position, last)
            positions[parts[position].partition] = Int16(position)
        }
        return parts.removeLast()
    }

    /// The partitions that have a part.
    var partitions: [Int] { parts.map(\.partition) }
}
