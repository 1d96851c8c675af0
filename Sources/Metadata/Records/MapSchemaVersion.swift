import Foundation
import Tenancy

/// How the data plane applies a map's schema.
public enum SchemaEnforcement: String, Sendable, CaseIterable, Codable {
    /// Stored and versioned, not applied.
    case off
    /// Violations accepted, logged and counted.
    case warn
    /// Violations refused.
    case strict
}

/// One version of a map's schema. Versions of a map are numbered 1, 2, ... and never reused,
/// including across a delete (a later put continues the numbering).
public struct MapSchemaVersion: Sendable, Equatable {
    public var tenant: TenantID
    public var map: String
    public var version: Int
    public var enforcement: SchemaEnforcement
    /// The schema document as compact JSON text (as checked and normalised by the control plane).
    public var schemaJSON: String
    public var createdAt: Date

    public init(tenant: TenantID, map: String, version: Int, enforcement: SchemaEnforcement, schemaJSON: String, createdAt: Date) {
        self.tenant = tenant
        self.map = map
        self.version = version
        self.enforcement = enforcement
        self.schemaJSON = schemaJSON
        self.createdAt = createdAt
    }
}

/// Where a map's schema history stands: the version in force (nil once deleted) and the
/// highest version ever created (so numbering continues after a delete).
public struct MapSchemaHead: Sendable, Equatable {
    public var current: Int?
    public var latest: Int

    public init(current: Int?, latest: Int) {
        self.current = current
        self.latest = latest
    }
}
