import HTTPEdge
import Logging

/// How many client connections a node holds at once: as many as its open-files limit allows
/// once what it needs besides is kept aside (`OpenFilesLimit.reserve`), or fewer if
/// configured. The soft limit is raised to the hard one first, so a node started from a
/// shell's default of 1,024 still holds what the machine allows.
enum ClientConnectionLimit {
    /// Beyond this a limit counts as none (`ulimit -n unlimited`).
    static let unbounded = 1 << 30

    static func capacity(configured: Int?, metrics: DataPlaneMetrics, logger: Logger) -> ConnectionCapacity {
        let files = OpenFilesLimit.raise()
        let allowed = files.flatMap { $0.soft < unbounded ? OpenFilesLimit.clientConnections(for: $0.soft) : nil }
        var limit = configured ?? allowed ?? unbounded
        if let configured, let allowed, configured > allowed {
            logger.warning("--max-connections is more than the open-files limit allows; the node holds what it allows", metadata: [
                "maxConnections": "\(configured)", "allowed": "\(allowed)",
            ])
            limit = allowed
        }
        metrics.connectionsLimit.record(limit)
        var why = configured == limit ? "as configured" : "the open-files limit allows"
        if let files, files.soft < unbounded {
            why += "; open files \(files.soft)\(files.raisedFrom.map { " (raised from \($0))" } ?? ""), \(OpenFilesLimit.reserve(for: files.soft)) kept for storage and peers"
        }
        logger.notice("this node holds at most \(limit) client connections (\(why)); more are refused with 503")
        return ConnectionCapacity(limit: limit, onRefused: { metrics.connectionsRefused.increment() })
    }
}
