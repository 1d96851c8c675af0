import TopGunCore

/// A name within one tenant: a map, topic, lock or counter (design.md §7). Two tenants'
/// equal names are two things, and names compare byte for byte, as the client's JavaScript
/// strings and the database's rows do: "é" and "e\u{301}" are two maps.
public struct TenantScopedName: Hashable, Sendable, CustomStringConvertible {
    public var tenant: TenantID
    public var name: String

    public init(tenant: TenantID, name: String) {
        self.tenant = tenant
        self.name = name
    }

    public static func == (lhs: TenantScopedName, rhs: TenantScopedName) -> Bool {
        lhs.tenant == rhs.tenant && lhs.name.hasSameUTF8(as: rhs.name)
    }

    /// `String`'s hash: equal for equal bytes (canonically equivalent names collide and stay
    /// distinct).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(tenant)
        hasher.combine(name)
    }

    public var description: String { "\(tenant)/\(name)" }
}
