/// A token bucket: `capacity` tokens, refilled at `ratePerSecond`. Pure: time is an input.
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let ratePerSecond: Double
    public private(set) var tokens: Double
    private var lastRefillNanos: UInt64

    public init(capacity: Double, ratePerSecond: Double, nowNanos: UInt64) {
        self.capacity = capacity
        self.ratePerSecond = ratePerSecond
        self.tokens = capacity
        self.lastRefillNanos = nowNanos
    }

    /// Takes `cost` tokens if available.
    public mutating func take(_ cost: Double, nowNanos: UInt64) -> Bool {
        take(cost, whenAtLeast: cost, nowNanos: nowNanos)
    }

    /// Takes `cost` tokens if at least `threshold` are available, going into debt if `cost`
    /// is more: a charge larger than the bucket waits for a full bucket, and what it took
    /// beyond is paid back by the refill before the next one (the rate holds).
    public mutating func take(_ cost: Double, whenAtLeast threshold: Double, nowNanos: UInt64) -> Bool {
        refill(nowNanos: nowNanos)
        guard tokens >= threshold else { return false }
        tokens -= cost
        return true
    }

    /// The same bucket refilled at another rate and holding another capacity, as full (or as
    /// far in debt) in proportion as it was.
    public func retuned(capacity: Double, ratePerSecond: Double, nowNanos: UInt64) -> TokenBucket {
        var bucket = self
        bucket.refill(nowNanos: nowNanos)
        var made = TokenBucket(capacity: capacity, ratePerSecond: ratePerSecond, nowNanos: nowNanos)
        made.tokens = self.capacity > 0 ? bucket.tokens / self.capacity * capacity : capacity
        return made
    }

    /// Milliseconds until `cost` tokens will be available.
    public func millisUntilAvailable(_ cost: Double) -> Int64 {
        guard tokens < cost else { return 0 }
        guard ratePerSecond > 0 else { return 1000 }
        return Int64(((cost - tokens) / ratePerSecond * 1000).rounded(.up))
    }

    private mutating func refill(nowNanos: UInt64) {
        guard nowNanos > lastRefillNanos else { return }
        let elapsed = Double(nowNanos - lastRefillNanos) / 1e9
        tokens = min(capacity, tokens + elapsed * ratePerSecond)
        lastRefillNanos = nowNanos
    }
}

/// Monotonic nanoseconds for rate limiting.
@inline(__always)
func monotonicNanos() -> UInt64 {
    DispatchTimeNanos.now()
}

enum DispatchTimeNanos {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
