import Foundation

/// A customer of the managed service.
public struct Tenant: Sendable, Equatable, Hashable {
    public enum Status: String, Sendable, CaseIterable {
        case active
        case suspended
        case deleted
    }

    public var id: TenantID
    /// Unique and human-chosen (`acme-prod`).
    public var slug: String
    public var displayName: String
    /// `free`, `pro` or `enterprise`; picks the default quotas.
    public var plan: String
    public var status: Status
    public var createdAt: Date

    public init(id: TenantID, slug: String, displayName: String, plan: String, status: Status, createdAt: Date) {
        self.id = id
        self.slug = slug
        self.displayName = displayName
        self.plan = plan
        self.status = status
        self.createdAt = createdAt
    }
}
