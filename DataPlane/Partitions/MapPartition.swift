import TopGunCore

/// One map's records in one partition (design.md §3), with that partition's part of the
/// map's Merkle tree: what a partition holds of each map, and the unit it is loaded,
/// streamed and dropped in. A map's whole tree is the sum of its parts' leaves
/// (`MerkleHashes.summing`); its query results are read across its parts.
///
/// A map holds LWW records or OR-Map entries, never both (`MapKind`); the part of the other
/// kind stays empty. A class, owned by its map's actor alone: a part is reached by reference
/// on every op, never copied (a copy would retain each of its tables).
final class MapPartition {
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
struct PartitionParts {
    /// Position in `parts` of each partition's part; -1 when absent.
    private var positions = [Int16](repeating: -1, count: PartitionFunction.partitionCount)
    private(set) var parts: ContiguousArray<MapPartition> = []

    init() {}

    subscript(partition: Int) -> MapPartition? {
        let position = positions[partition]
        return position < 0 ? nil : parts[Int(position)]
    }

    /// The part of `partition`, created when absent.
    mutating func part(_ partition: Int) -> MapPartition {
        let position = Int(positions[partition])
        if position >= 0 { return parts[position] }
        let part = MapPartition(partition: partition)
        positions[partition] = Int16(parts.count)
        parts.append(part)
        return part
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
