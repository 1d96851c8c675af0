import Synchronization
import TopGunCore

/// A physical clock that tests set by hand.
final class ManualClock: PhysicalClock {
    private let millis: Mutex<Int64>

    init(_ start: Int64) { millis = Mutex(start) }

    func nowMillis() -> Int64 { millis.withLock { $0 } }

    func set(_ value: Int64) { millis.withLock { $0 = value } }
}
