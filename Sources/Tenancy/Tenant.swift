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
    /// The last change of any member (equal to `createdAt` until then).
    public var updatedAt: Date
    /// Set while `suspended`.
    public var suspendedAt: Date?
    /// Why it was suspended, if a reason was given; set while `suspended`.
    public var suspensionReason: String?
    /// Set once `deleted` (a soft delete: the row stays for usage and audit).
    public var deletedAt: Date?

    public init(
        id: TenantID, slug: String, displayName: String, plan: String, status: Status, createdAt: Date,
        updatedAt: Date? = nil, suspendedAt: Date? = nil, suspensionReason: String? = nil, deletedAt: Date? = nil
    ) {
        self.id = id
        self.slug = slug
        self.displayName = displayName
        self.plan = plan
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.suspendedAt = suspendedAt
        self.suspensionReason = suspensionReason
        self.deletedAt = deletedAt
    }
}
