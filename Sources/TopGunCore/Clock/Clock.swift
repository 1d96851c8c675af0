/// The physical time source of an HLC, in milliseconds since the Unix epoch.
///
/// Injected so that tests freeze or drive time; production uses `SystemClock`.
public protocol PhysicalClock: Sendable {
    func nowMillis() -> Int64
}

/// Wall-clock time from the operating system.
public struct SystemClock: PhysicalClock {
    public init() {}

    public func nowMillis() -> Int64 {
        // Duration since the epoch via the C library: no Foundation needed in the core.
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
