import Foundation
import Tenancy

/// One change made through the control plane, recorded in the same transaction as the change.
public struct AuditEvent: Sendable, Equatable {
    /// `aud_` + 26 base32 characters.
    public var id: String
    public var time: Date
    /// An admin token id, `bootstrap` or `system`.
    public var actor: String
    /// `tenant.create`, `signing_key.revoke`, ... (the contract's `AuditAction`).
    public var action: String
    /// The tenant the target belongs to (nil for admin tokens).
    public var tenant: TenantID?
    /// `tenant`, `signing_key`, `quota`, `schema` or `admin_token`.
    public var targetType: String
    public var targetID: String
    /// For `schema.put`: the version created.
    public var targetVersion: Int?
    public var requestID: String
    public var idempotencyKey: String?
    /// A JSON object (compact text) saying what changed; never secrets.
    public var detailsJSON: String

    public init(
        id: String, time: Date, actor: String, action: String, tenant: TenantID?, targetType: String,
        targetID: String, targetVersion: Int? = nil, requestID: String, idempotencyKey: String? = nil,
        detailsJSON: String = "{}"
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.tenant = tenant
        self.targetType = targetType
        self.targetID = targetID
        self.targetVersion = targetVersion
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
        self.detailsJSON = detailsJSON
    }
}

/// Which audit events to list. Nil members do not filter.
public struct AuditFilter: Sendable, Equatable {
    public var tenant: TenantID?
    public var actor: String?
    public var action: String?
    /// Inclusive.
    public var from: Date?
    /// Exclusive.
    public var to: Date?

    public init(tenant: TenantID? = nil, actor: String? = nil, action: String? = nil, from: Date? = nil, to: Date? = nil) {
        self.tenant = tenant
        self.actor = actor
        self.action = action
        self.from = from
        self.to = to
    }
}
