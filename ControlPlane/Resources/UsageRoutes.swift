import Foundation
import HTTPTypes
import Metadata
import Tenancy

/// `/v1/tenants/{tenant_id}/usage` (a dense series) and `/v1/usage/export` (CSV or NDJSON
/// for billing), over the hourly rows the data plane flushes.
struct UsageRoutes {
    enum Granularity: String {
        case hour
        case day

        var seconds: Int64 { self == .hour ? 3600 : 86_400 }
        /// The longest range one request may ask for.
        var maximumRange: TimeInterval { self == .hour ? 31 * 86_400 : 366 * 86_400 }
    }

    /// One period's figures, aggregated from hours: sums, the peak, the last storage figure.
    struct Figures {
        var operations: Int64 = 0
        var bytesIn: Int64 = 0
        var bytesOut: Int64 = 0
        var connectionSeconds: Int64 = 0
        var peakConnections: Int64 = 0
        var storageBytes: Int64 = 0
        private var storageMeasuredAt: Date?

        mutating func add(_ hour: UsageHour) {
            operations &+= hour.operations
            bytesIn &+= hour.bytesIn
            bytesOut &+= hour.bytesOut
            connectionSeconds &+= hour.connectionSeconds
            peakConnections = max(peakConnections, hour.peakConnections)
            if storageMeasuredAt.map({ hour.periodStart >= $0 }) ?? true {
                storageMeasuredAt = hour.periodStart
                storageBytes = hour.storageBytes
            }
        }

        var isZero: Bool {
            operations == 0 && bytesIn == 0 && bytesOut == 0 && connectionSeconds == 0 && peakConnections == 0 && storageBytes == 0
        }
    }

    struct PointBody: Encodable {
        var period_start: String
        var period_end: String
        var operations: Int64
        var bytes_in: Int64
        var bytes_out: Int64
        var connection_seconds: Int64
        var peak_connections: Int64
        var storage_bytes: Int64
        var partial: Bool?
        var tenant_id: String?

        init(start: Date, end: Date, figures: Figures, partial: Bool?, tenant: TenantID? = nil) {
            period_start = RFC3339.format(start)
            period_end = RFC3339.format(end)
            operations = figures.operations
            bytes_in = figures.bytesIn
            bytes_out = figures.bytesOut
            connection_seconds = figures.connectionSeconds
            peak_connections = figures.peakConnections
            storage_bytes = figures.storageBytes
            self.partial = partial
            tenant_id = tenant?.rawValue
        }
    }

    struct SeriesBody: Encodable {
        var tenant_id: String
        var from: String
        var to: String
        var granularity: String
        var series: [PointBody]
    }

    /// `from`, `to` and `granularity`, rounded and checked.
    static func range(_ call: APICall) throws(APIError) -> (from: Date, to: Date, granularity: Granularity) {
        let granularity = try call.enumQuery("granularity", Granularity.self) ?? .hour
        guard let fromDate = try call.timeQuery("from", required: true), let toDate = try call.timeQuery("to", required: true) else {
            throw .validation(parameter: "from", "is required")
        }
        guard toDate > fromDate else { throw .validation(parameter: "to", "must be after from") }
        let from = RFC3339.floor(fromDate, toMultipleOf: granularity.seconds)
        let to = RFC3339.ceil(toDate, toMultipleOf: granularity.seconds)
        guard to.timeIntervalSince(from) <= granularity.maximumRange else {
            throw .validation(parameter: "to", "the range may span at most \(granularity == .hour ? "31 days for hours" : "366 days for days")")
        }
        return (from, to, granularity)
    }

    static func series(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["from", "to", "granularity"])
        let tenantID = try call.tenantID()
        let (from, to, granularity) = try range(call)
        guard try await call.store.tenant(id: tenantID) != nil else { throw APIError.notFound("no tenant \(tenantID)") }
        let hours = try await call.store.usageHours(tenant: tenantID, from: from, to: to)
        var byPeriod: [Date: Figures] = [:]
        for hour in hours {
            byPeriod[RFC3339.floor(hour.periodStart, toMultipleOf: granularity.seconds), default: Figures()].add(hour)
        }
        var points: [PointBody] = []
        var start = from
        while start < to {
            let end = start.addingTimeInterval(Double(granularity.seconds))
            points.append(PointBody(start: start, end: end, figures: byPeriod[start] ?? Figures(), partial: end > call.now))
            start = end
        }
        return .json(.ok, SeriesBody(
            tenant_id: tenantID.rawValue, from: RFC3339.format(from), to: RFC3339.format(to),
            granularity: granularity.rawValue, series: points))
    }

    enum ExportFormat: String {
        case csv
        case ndjson
    }

    static let csvHeader = "tenant_id,period_start,period_end,operations,bytes_in,bytes_out,connection_seconds,peak_connections,storage_bytes"

    static func export(_ call: APICall) async throws -> APIResponse {
        try call.allowOnlyQuery(["from", "to", "granularity", "format", "limit", "cursor"])
        let (from, to, granularity) = try range(call)
        let format = try call.enumQuery("format", ExportFormat.self) ?? .csv
        let limit = try call.limit(default: 1000, maximum: 10_000)
        let filters = "usage-export|\(RFC3339.format(from))|\(RFC3339.format(to))|\(granularity.rawValue)"
        let after = try PageCursor.decode(try call.queryValue("cursor"), filters: filters)
        // Closed periods only: the still-open one is left out until it ends.
        let closedEnd = min(to, RFC3339.floor(call.now, toMultipleOf: granularity.seconds))
        var rows: [(tenant: TenantID, start: Date, figures: Figures)] = []
        var hasMore = false
        if closedEnd > from {
            (rows, hasMore) = try await exportRows(
                call.store, from: from, to: closedEnd, granularity: granularity,
                after: after.map { ($0.time, TenantID($0.id)) }, limit: limit)
        }
        var body = ""
        switch format {
        case .csv:
            body = csvHeader + "\r\n"
            for row in rows {
                let end = row.start.addingTimeInterval(Double(granularity.seconds))
                let f = row.figures
                body += "\(row.tenant.rawValue),\(RFC3339.format(row.start)),\(RFC3339.format(end)),\(f.operations),\(f.bytesIn),\(f.bytesOut),\(f.connectionSeconds),\(f.peakConnections),\(f.storageBytes)\r\n"
            }
        case .ndjson:
            for row in rows {
                let end = row.start.addingTimeInterval(Double(granularity.seconds))
                let point = PointBody(start: row.start, end: end, figures: row.figures, partial: nil, tenant: row.tenant)
                body += String(decoding: JSONBody.encode(point), as: UTF8.self) + "\n"
            }
        }
        var headers: [(HTTPField.Name, String)] = [
            (.contentType, format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson")
        ]
        if hasMore, let last = rows.last {
            let cursor = PageCursor.encode(ListPosition(time: last.start, id: last.tenant.rawValue), filters: filters)
            let query = [
                ("from", RFC3339.format(from)), ("to", RFC3339.format(to)), ("granularity", granularity.rawValue),
                ("format", format.rawValue), ("limit", String(limit)), ("cursor", cursor),
            ].map { "\($0.0)=\(percentEncode($0.1))" }.joined(separator: "&")
            headers.append((.link, "</v1/usage/export?\(query)>; rel=\"next\""))
        }
        return APIResponse(status: .ok, headers: headers, body: Array(body.utf8))
    }

    /// Up to `limit` non-zero rows ordered by (period start, tenant) after `after`, and
    /// whether more follow.
    private static func exportRows(
        _ store: any ControlPlaneStore, from: Date, to: Date, granularity: Granularity,
        after: (Date, TenantID)?, limit: Int
    ) async throws -> ([(tenant: TenantID, start: Date, figures: Figures)], Bool) {
        var rows: [(tenant: TenantID, start: Date, figures: Figures)] = []
        switch granularity {
        case .hour:
            var position = after.map { (periodStart: $0.0, tenant: $0.1) }
            while true {
                let batch = try await store.usageHours(from: from, to: to, after: position, limit: limit + 1)
                for hour in batch {
                    var figures = Figures()
                    figures.add(hour)
                    if !figures.isZero { rows.append((hour.tenant, hour.periodStart, figures)) }
                    if rows.count > limit { return (Array(rows.prefix(limit)), true) }
                }
                guard batch.count == limit + 1, let last = batch.last else { return (rows, false) }
                position = (last.periodStart, last.tenant)
            }
        case .day:
            var day = after.map { $0.0 } ?? from
            while day < to {
                let end = min(to, day.addingTimeInterval(86_400))
                var figures: [TenantID: Figures] = [:]
                var position: (periodStart: Date, tenant: TenantID)?
                while true {
                    let batch = try await store.usageHours(from: day, to: end, after: position, limit: 10_000)
                    for hour in batch { figures[hour.tenant, default: Figures()].add(hour) }
                    guard batch.count == 10_000, let last = batch.last else { break }
                    position = (last.periodStart, last.tenant)
                }
                for tenant in figures.keys.sorted() {
                    if let after, after.0 == day, tenant <= after.1 { continue }
                    guard let dayFigures = figures[tenant], !dayFigures.isZero else { continue }
                    rows.append((tenant, day, dayFigures))
                    if rows.count > limit { return (Array(rows.prefix(limit)), true) }
                }
                day = day.addingTimeInterval(86_400)
            }
            return (rows, false)
        }
    }

    private static func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
