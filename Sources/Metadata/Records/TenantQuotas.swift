import Foundation
import Tenancy

/// A tenant's quotas as stored: either following its plan (`custom == nil`) or replaced.
///
/// A row exists for every tenant from its creation (version 1, following the plan).
public struct StoredQuotas: Sendable, Equatable {
    public var tenant: TenantID
    /// Replaced limits, or nil while the tenant follows its plan's defaults.
    public var custom: QuotaLimits?
    /// Increases with every change, including a plan change that moves plan-following limits;
    /// the control plane's `ETag` is derived from it.
    public var version: Int64
    public var updatedAt: Date

    public init(tenant: TenantID, custom: QuotaLimits?, version: Int64, updatedAt: Date) {
        self.tenant = tenant
        self.custom = custom
        self.version = version
        self.updatedAt = updatedAt
    }
}

/// The limits in force for a tenant: its stored quotas resolved against its plan.
public struct TenantQuotas: Sendable, Equatable {
    public enum Source: String, Sendable {
        case plan
        case custom
    }

    public var tenant: TenantID
    public var plan: String
    public var source: Source
    public var version: Int64
    public var updatedAt: Date
    public var limits: QuotaLimits

    public init(tenant: Tenant, stored: StoredQuotas) {
        self.tenant = tenant.id
        self.plan = tenant.plan
        self.source = stored.custom == nil ? .plan : .custom
        self.version = stored.version
        self.updatedAt = stored.updatedAt
        // An unknown plan (written by a newer control plane) falls back to the smallest.
        self.limits = stored.custom ?? (Plan(rawValue: tenant.plan) ?? .free).defaultQuotas
    }
}
