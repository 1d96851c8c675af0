import Foundation
import Tenancy

/// One tenant's usage in one UTC hour, as stored (design.md §7).
public struct UsageHour: Sendable, Equatable {
    public var tenant: TenantID
    /// The start of the hour (UTC, whole hour).
    public var periodStart: Date
    public var operations: Int64
    public var bytesIn: Int64
    public var bytesOut: Int64
    public var connectionSeconds: Int64
    /// Most sessions open at once during the hour.
    public var peakConnections: Int64
    /// Bytes of stored records at the last measurement in the hour.
    public var storageBytes: Int64

    public init(
        tenant: TenantID, periodStart: Date, operations: Int64 = 0, bytesIn: Int64 = 0, bytesOut: Int64 = 0,
        connectionSeconds: Int64 = 0, peakConnections: Int64 = 0, storageBytes: Int64 = 0
    ) {
        self.tenant = tenant
        self.periodStart = periodStart
        self.operations = operations
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.connectionSeconds = connectionSeconds
        self.peakConnections = peakConnections
        self.storageBytes = storageBytes
    }
}

/// What one data-plane node counted since its last flush. Applying a flush adds the sums,
/// raises the peaks to at least the given ones and replaces storage bytes; a flush whose
/// `id` was applied before changes nothing, so a retried flush counts once.
public struct UsageFlush: Sendable, Equatable {
    /// Unique per flush (e.g. node id + sequence number).
    public var id: String
    /// Deltas per (tenant, hour); `periodStart` is a whole UTC hour.
    public var deltas: [UsageHour]

    public init(id: String, deltas: [UsageHour]) {
        self.id = id
        self.deltas = deltas
    }
}
