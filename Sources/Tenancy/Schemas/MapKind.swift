/// Which CRDT a map holds: fixed once per tenant and map (the metadata store records the
/// first write's kind), and a write of the other kind is refused.
public enum MapKind: String, Sendable, Equatable, CaseIterable {
    case lww
    case orMap = "or"
}
