import Foundation
import Metadata
import Synchronization
import Tenancy

/// Counts each tenant's usage per UTC hour in memory (design.md §7): operations, bytes in
/// and out, connection-seconds and peak connections. `UsageFlushService` drains it into the
/// metadata store every few seconds; what was counted since the last flush is lost if the
/// process dies (the README says so).
public final class UsageMeter: Sendable {
    private struct Counters {
        var operations: Int64 = 0
        var bytesIn: Int64 = 0
        var bytesOut: Int64 = 0
        /// Fractional seconds are carried over, so short sessions add up exactly.
        var connectionSeconds: Double = 0
        var peakConnections: Int64 = 0
    }

    private struct TenantState {
        var hours: [Int64: Counters] = [:]
        var openConnections: Int64 = 0
        /// In a cluster: the tenant's connections open on the other nodes (about a second old).
        var otherNodesConnections: Int64 = 0
        /// When connection-seconds were last accrued for the open connections.
        var accruedUntil: Double = 0
        /// Seconds already handed out in flushes, per hour (the fraction stays behind).
        var flushedConnectionSeconds: [Int64: Int64] = [:]
        /// The last measurement of stored bytes; every delta carries it, since the store keeps
        /// the last value it was sent for an hour.
        var storageBytes: Int64 = 0
        var storageChanged = false
    }

    private let state = Mutex<[TenantID: TenantState]>([:])
    private let now: @Sendable () -> Double

    /// - Parameter now: seconds since 1970 (a test passes its own clock).
    public init(now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.now = now
    }

    static func hour(of seconds: Double) -> Int64 { Int64((seconds / 3600).rounded(.down)) }

    public func operations(_ tenant: TenantID, count: Int) {
        guard count > 0 else { return }
        let hour = Self.hour(of: now())
        state.withLock { $0[tenant, default: TenantState()].hours[hour, default: Counters()].operations += Int64(count) }
    }

    public func bytesIn(_ tenant: TenantID, _ count: Int) {
        let hour = Self.hour(of: now())
        state.withLock { $0[tenant, default: TenantState()].hours[hour, default: Counters()].bytesIn += Int64(count) }
    }

    public func bytesOut(_ tenant: TenantID, _ count: Int) {
        let hour = Self.hour(of: now())
        state.withLock { $0[tenant, default: TenantState()].hours[hour, default: Counters()].bytesOut += Int64(count) }
    }

    /// A measurement of every tenant's stored bytes (tenants absent store nothing now).
    public func storageMeasured(_ bytes: [TenantID: Int64]) {
        state.withLock { states in
            for (tenant, count) in bytes where states[tenant]?.storageBytes != count {
                states[tenant, default: TenantState()].storageBytes = count
                states[tenant, default: TenantState()].storageChanged = true
            }
            for (tenant, tenantState) in states where bytes[tenant] == nil && tenantState.storageBytes != 0 {
                states[tenant]?.storageBytes = 0
                states[tenant]?.storageChanged = true
            }
        }
    }

    public func connectionOpened(_ tenant: TenantID) {
        let time = now()
        state.withLock { states in
            var tenantState = states[tenant, default: TenantState()]
            Self.accrue(&tenantState, until: time)
            tenantState.openConnections += 1
            let hour = Self.hour(of: time)
            tenantState.hours[hour, default: Counters()].peakConnections = max(
                tenantState.hours[hour, default: Counters()].peakConnections, tenantState.openConnections + tenantState.otherNodesConnections)
            states[tenant] = tenantState
        }
    }

    /// In a cluster: each tenant's connections open on the other nodes, so that the peak this
    /// node reports is the cluster's (the store keeps the greatest of the nodes' peaks).
    public func otherNodesConnections(_ counts: [TenantID: Int64]) {
        let hour = Self.hour(of: now())
        state.withLock { states in
            for (tenant, tenantState) in states where tenantState.otherNodesConnections != 0 && counts[tenant] == nil {
                states[tenant]?.otherNodesConnections = 0
            }
            for (tenant, others) in counts {
                var tenantState = states[tenant, default: TenantState()]
                tenantState.otherNodesConnections = others
                if tenantState.openConnections > 0 {
                    tenantState.hours[hour, default: Counters()].peakConnections = max(
                        tenantState.hours[hour, default: Counters()].peakConnections, tenantState.openConnections + others)
                }
                states[tenant] = tenantState
            }
        }
    }

    public func connectionClosed(_ tenant: TenantID) {
        let time = now()
        state.withLock { states in
            guard var tenantState = states[tenant] else { return }
            Self.accrue(&tenantState, until: time)
            tenantState.openConnections = max(0, tenantState.openConnections - 1)
            states[tenant] = tenantState
        }
    }

    /// Everything counted since the last drain, as deltas per (tenant, hour); connection
    /// seconds are accrued up to now first.
    public func drain() -> [UsageHour] {
        let time = now()
        return state.withLock { states in
            var deltas: [UsageHour] = []
            for (tenant, var tenantState) in states {
                Self.accrue(&tenantState, until: time)
                let currentHour = Self.hour(of: time)
                for (hour, counters) in tenantState.hours {
                    let wholeSeconds = Int64(counters.connectionSeconds.rounded(.down))
                    let alreadyFlushed = tenantState.flushedConnectionSeconds[hour] ?? 0
                    let secondsDelta = wholeSeconds - alreadyFlushed
                    let storageNews = hour == currentHour && tenantState.storageChanged
                    if counters.operations != 0 || counters.bytesIn != 0 || counters.bytesOut != 0 || secondsDelta != 0
                        || counters.peakConnections != 0 || storageNews {
                        deltas.append(UsageHour(
                            tenant: tenant, periodStart: Date(timeIntervalSince1970: Double(hour * 3600)),
                            operations: counters.operations, bytesIn: counters.bytesIn, bytesOut: counters.bytesOut,
                            connectionSeconds: secondsDelta, peakConnections: counters.peakConnections,
                            storageBytes: tenantState.storageBytes))
                    }
                    if hour < currentHour {
                        tenantState.hours[hour] = nil
                        tenantState.flushedConnectionSeconds[hour] = nil
                    } else {
                        // The open hour keeps its peak (the store keeps the maximum) and its
                        // fractional connection-seconds; the sums start again from zero.
                        tenantState.hours[hour] = Counters(
                            connectionSeconds: counters.connectionSeconds,
                            peakConnections: tenantState.openConnections)
                        tenantState.flushedConnectionSeconds[hour] = wholeSeconds
                    }
                }
                if tenantState.storageChanged, tenantState.hours[currentHour] == nil {
                    // A measurement in an hour with no other activity still reaches the store.
                    deltas.append(UsageHour(
                        tenant: tenant, periodStart: Date(timeIntervalSince1970: Double(currentHour * 3600)),
                        storageBytes: tenantState.storageBytes))
                }
                tenantState.storageChanged = false
                // A tenant with nothing open, nothing left to count and nothing stored is forgotten.
                states[tenant] = tenantState.openConnections == 0 && tenantState.hours.isEmpty && tenantState.storageBytes == 0 ? nil : tenantState
            }
            return deltas
        }
    }

    /// Adds the open connections' seconds since the last accrual, split at hour boundaries.
    private static func accrue(_ state: inout TenantState, until time: Double) {
        defer { state.accruedUntil = time }
        guard state.openConnections > 0, state.accruedUntil > 0, time > state.accruedUntil else { return }
        var start = state.accruedUntil
        while start < time {
            let hour = Self.hour(of: start)
            let hourEnd = Double(hour + 1) * 3600
            let end = min(time, hourEnd)
            state.hours[hour, default: Counters()].connectionSeconds += (end - start) * Double(state.openConnections)
            if end == hourEnd, end < time {
                // A new hour starts with the connections still open.
                state.hours[hour + 1, default: Counters()].peakConnections = max(
                    state.hours[hour + 1, default: Counters()].peakConnections, state.openConnections)
            }
            start = end
        }
    }
}
