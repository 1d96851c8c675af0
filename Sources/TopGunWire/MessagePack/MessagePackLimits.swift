/// Bounds that turn hostile input into an error instead of a crash or an allocation the
/// input does not justify.
public struct MessagePackLimits: Sendable, Equatable {
    /// Largest frame accepted, in bytes (the protocol's limit is 2 MiB).
    public var maxInputBytes: Int
    /// Deepest nesting of arrays and maps.
    public var maxDepth: Int
    /// Most elements (array items or map entries) one container may declare.
    public var maxContainerCount: Int

    public init(maxInputBytes: Int = 2 * 1024 * 1024, maxDepth: Int = 64, maxContainerCount: Int = 1 << 20) {
        self.maxInputBytes = maxInputBytes
        self.maxDepth = maxDepth
        self.maxContainerCount = maxContainerCount
    }

    public static let `default` = MessagePackLimits()
}
