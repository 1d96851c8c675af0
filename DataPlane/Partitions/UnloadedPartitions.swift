import Synchronization

/// Partitions served here whose records are not in memory (dropped, not yet loaded again).
/// Writes to them are refused for now (503, the client sends them again): a write merged
/// into an empty part would be stored as if nothing came before it, and replace the newer
/// row storage holds. Memory holds everything storage does, for every partition written here.
public final class UnloadedPartitions: Sendable {
    private let partitions = Mutex<Set<Int>>([])
    /// Read on every batch: a flag, so that the common case takes no lock.
    private let hasAny = Atomic<Bool>(false)

    public init() {}

    public var isEmpty: Bool { !hasAny.load(ordering: .acquiring) }

    public func contains(_ partition: Int) -> Bool {
        guard !isEmpty else { return false }
        return partitions.withLock { $0.contains(partition) }
    }

    func insert(_ partition: Int) {
        partitions.withLock { partitions in
            partitions.insert(partition)
            hasAny.store(true, ordering: .releasing)
        }
    }

    func remove(_ partition: Int) {
        partitions.withLock { partitions in
            partitions.remove(partition)
            hasAny.store(!partitions.isEmpty, ordering: .releasing)
        }
    }
}
