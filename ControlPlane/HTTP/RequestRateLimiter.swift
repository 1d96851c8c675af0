import Foundation

/// Fixed-window request budgets: `quota` requests per `window` seconds per key (an admin
/// token's actor, or a client address for requests without a valid token).
public actor RequestRateLimiter {
    public struct Decision: Sendable {
        public var allowed: Bool
        public var remaining: Int
        /// Seconds until the window resets (at least 1).
        public var resetSeconds: Int
    }

    public let quota: Int
    public let window: Int
    private var windows: [String: (start: Date, used: Int)] = [:]
    private var lastSweep = Date.distantPast

    public init(quota: Int, window: Int) {
        self.quota = max(1, quota)
        self.window = max(1, window)
    }

    /// Charges one request to `key`.
    public func charge(_ key: String, now: Date) -> Decision {
        sweep(now: now)
        var entry = windows[key] ?? (start: now, used: 0)
        if now.timeIntervalSince(entry.start) >= Double(window) {
            entry = (start: now, used: 0)
        }
        let reset = max(1, Int((entry.start.addingTimeInterval(Double(window)).timeIntervalSince(now)).rounded(.up)))
        guard entry.used < quota else {
            windows[key] = entry
            return Decision(allowed: false, remaining: 0, resetSeconds: reset)
        }
        entry.used += 1
        windows[key] = entry
        return Decision(allowed: true, remaining: quota - entry.used, resetSeconds: reset)
    }

    /// Drops finished windows now and then, so keys from one-off clients do not pile up.
    private func sweep(now: Date) {
        guard now.timeIntervalSince(lastSweep) >= Double(window) else { return }
        lastSweep = now
        windows = windows.filter { now.timeIntervalSince($0.value.start) < Double(window) }
    }
}
