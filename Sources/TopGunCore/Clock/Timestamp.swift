/// A hybrid logical clock timestamp: wall-clock milliseconds, a logical counter within the
/// millisecond, and the id of the node that made it.
///
/// Ordering is millis, then counter, then node id compared by UTF-8 bytes (the Rust
/// server's rule; the TypeScript client agrees for the lower-case ids it generates).
public struct Timestamp: Sendable, Hashable {
    public var millis: Int64
    public var counter: Int64
    public var nodeId: String

    @inlinable
    public init(millis: Int64, counter: Int64, nodeId: String) {
        self.millis = millis
        self.counter = counter
        self.nodeId = nodeId
    }

    /// The zero timestamp `{0, 0, ""}`, which the HTTP client sends for "never synced".
    public static let zero = Timestamp(millis: 0, counter: 0, nodeId: "")

    /// Node ids compare byte for byte, as in the ordering below (`String`'s `==` would call
    /// two ids equal that `<` orders).
    @inlinable
    public static func == (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millis == rhs.millis && lhs.counter == rhs.counter && lhs.nodeId.hasSameUTF8(as: rhs.nodeId)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(millis)
        hasher.combine(counter)
        hasher.combine(nodeId)
    }
}

extension Timestamp: Comparable {
    @inlinable
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        if lhs.millis != rhs.millis { return lhs.millis < rhs.millis }
        if lhs.counter != rhs.counter { return lhs.counter < rhs.counter }
        return lhs.nodeId.utf8.lexicographicallyPrecedes(rhs.nodeId.utf8)
    }
}

extension Timestamp: CustomStringConvertible, LosslessStringConvertible {
    /// `millis:counter:nodeId`, the form used as an OR-Map tag.
    public var description: String { "\(millis):\(counter):\(nodeId)" }

    /// Parses `millis:counter:nodeId`. The node id is everything after the second colon and
    /// must not be empty; millis and counter are decimal integers.
    public init?(_ description: String) {
        let parts = description.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty,
            let millis = Int64(parts[0]), let counter = Int64(parts[1])
        else { return nil }
        self.init(millis: millis, counter: counter, nodeId: String(parts[2]))
    }
}
