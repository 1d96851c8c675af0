extension StoredValue {
    /// Which CRDT a row holds. Part of a row's identity: an LWW map and an OR-Map may share a
    /// name, and their rows must not replace each other.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case lww
        case orMap = "ormap"
        case counter
    }

    /// The kind of CRDT this value is.
    @inlinable
    public var kind: Kind {
        switch self {
        case .lww: return .lww
        case .orMap: return .orMap
        case .counter: return .counter
        }
    }
}
