/// A set of partition ids (0..<271) as a fixed bitmap: five words, no allocation, cheap to
/// copy into a value that travels with every write (a flush ticket names the partitions its
/// batch touched).
public struct PartitionSet: Hashable, Sendable, Sequence, CustomStringConvertible {
    @usableFromInline
    static let wordCount = (PartitionFunction.partitionCount + 63) / 64

    @usableFromInline
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)

    @inlinable
    public init() {}

    @inlinable
    public init<S: Sequence>(_ partitions: S) where S.Element == Int {
        for partition in partitions { insert(partition) }
    }

    /// Every partition.
    public static var all: PartitionSet { PartitionSet(0..<PartitionFunction.partitionCount) }

    @inlinable
    public var isEmpty: Bool { words == (0, 0, 0, 0, 0) }

    public var count: Int {
        var total = 0
        withWords { for word in $0 { total += word.nonzeroBitCount } }
        return total
    }

    @inlinable
    public func contains(_ partition: Int) -> Bool {
        guard (0..<PartitionFunction.partitionCount).contains(partition) else { return false }
        return withWords { $0[partition >> 6] & (1 << UInt64(partition & 63)) != 0 }
    }

    /// Adds `partition`; ids outside 0..<271 are a programming error.
    @inlinable
    public mutating func insert(_ partition: Int) {
        precondition((0..<PartitionFunction.partitionCount).contains(partition), "partition \(partition) out of range")
        withMutableWords { $0[partition >> 6] |= 1 << UInt64(partition & 63) }
    }

    @inlinable
    public mutating func remove(_ partition: Int) {
        guard (0..<PartitionFunction.partitionCount).contains(partition) else { return }
        withMutableWords { $0[partition >> 6] &= ~(1 << UInt64(partition & 63)) }
    }

    @inlinable
    public mutating func formUnion(_ other: PartitionSet) {
        words.0 |= other.words.0
        words.1 |= other.words.1
        words.2 |= other.words.2
        words.3 |= other.words.3
        words.4 |= other.words.4
    }

    @inlinable
    public func union(_ other: PartitionSet) -> PartitionSet {
        var result = self
        result.formUnion(other)
        return result
    }

    @inlinable
    public func isDisjoint(with other: PartitionSet) -> Bool {
        (words.0 & other.words.0) | (words.1 & other.words.1) | (words.2 & other.words.2)
            | (words.3 & other.words.3) | (words.4 & other.words.4) == 0
    }

    public static func == (lhs: PartitionSet, rhs: PartitionSet) -> Bool { lhs.words == rhs.words }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
        hasher.combine(words.4)
    }

    public var description: String { "\(Array(self))" }

    /// The partitions in increasing order.
    public struct Iterator: IteratorProtocol {
        @usableFromInline
        let set: PartitionSet
        @usableFromInline
        var word = 0
        @usableFromInline
        var remaining: UInt64

        @inlinable
        init(_ set: PartitionSet) {
            self.set = set
            self.remaining = set.words.0
        }

        @inlinable
        public mutating func next() -> Int? {
            while remaining == 0 {
                word += 1
                guard word < PartitionSet.wordCount else { return nil }
                remaining = set.withWords { $0[word] }
            }
            let bit = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            return word << 6 | bit
        }
    }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(self) }

    @inlinable
    func withWords<R>(_ body: (UnsafeBufferPointer<UInt64>) -> R) -> R {
        withUnsafeBytes(of: words) { body($0.bindMemory(to: UInt64.self)) }
    }

    @inlinable
    mutating func withMutableWords<R>(_ body: (UnsafeMutableBufferPointer<UInt64>) -> R) -> R {
        withUnsafeMutableBytes(of: &words) { body($0.bindMemory(to: UInt64.self)) }
    }
}
