import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most client connections a port holds at once. Every accepted socket counts, WebSocket
/// or plain HTTP, from its accept to its close: past the limit a new connection is answered
/// `503` and closed (`CapacityRefusal`), rather than the process running out of file
/// descriptors and `accept` failing in a loop.
public final class ConnectionCapacity: Sendable {
    public let limit: Int
    private let open = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)
    private let onRefused: @Sendable () -> Void

    public init(limit: Int, onRefused: @escaping @Sendable () -> Void = {}) {
        precondition(limit > 0, "a port holds at least one connection")
        self.limit = limit
        self.onRefused = onRefused
    }

    /// Connections held now.
    public var openConnections: Int { open.load(ordering: .relaxed) }
    /// Connections refused since the start.
    public var refused: Int { refusals.load(ordering: .relaxed) }

    /// Takes a place for `channel`, given back when it closes; false when every place is taken
    /// (the channel must then be refused).
    public func admit(_ channel: any Channel) -> Bool {
        guard open.wrappingAdd(1, ordering: .relaxed).newValue <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            refusals.wrappingAdd(1, ordering: .relaxed)
            onRefused()
            return false
        }
        channel.closeFuture.whenComplete { _ in self.open.wrappingSubtract(1, ordering: .relaxed) }
        return true
    }
}

/// What a process may open, as `ConnectionCapacity` sizes a client port from it.
public enum OpenFilesLimit {
    /// The soft and hard limits on open files, after the soft one is raised to the hard one
    /// (a process may do that by itself); nil where the system does not say.
    public static func raise() -> (soft: Int, hard: Int, raisedFrom: Int?)? {
        var limits = rlimit()
        guard getrlimit(resourceOpenFiles, &limits) == 0 else { return nil }
        let before = limits.rlim_cur
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(resourceOpenFiles, &raised) == 0 { limits = raised }
        }
        return (clamp(limits.rlim_cur), clamp(limits.rlim_max), limits.rlim_cur != before ? clamp(before) : nil)
    }

    /// File descriptors a node keeps for everything but client connections: database
    /// connections, the cluster port and its peers, the control plane's port in `dev`,
    /// storage files, event loops. A sixteenth of the limit, between 64 and 1,024.
    public static func reserve(for limit: Int) -> Int {
        min(1_024, max(64, limit / 16))
    }

    /// The client connections a node can hold under an open-files limit of `limit`.
    public static func clientConnections(for limit: Int) -> Int {
        max(1, limit - reserve(for: limit))
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value > rlim_t(Int.max) ? Int.max : Int(value)
    }

    #if canImport(Glibc)
    private static let resourceOpenFiles = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceOpenFiles = RLIMIT_NOFILE
    #endif
}
