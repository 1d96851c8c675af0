@testable import DataPlane
import Foundation
import Metadata
import Synchronization
import Tenancy
import Testing

@Suite("Usage meter")
struct UsageMeterTests {
    final class TestClock: Sendable {
        let seconds = Mutex<Double>(0)
        func set(_ value: Double) { seconds.withLock { $0 = value } }
        var now: @Sendable () -> Double { { self.seconds.withLock { $0 } } }
    }

    let tenant = TenantID("tn_aaaaaaaaaaaaaaaaaaaa")
    let hour: Double = 1_000 * 3600  // a whole hour

    @Test func countsAreHandedOutOnceAndPerHour() {
        let clock = TestClock()
        clock.set(hour + 10)
        let meter = UsageMeter(now: clock.now)
        meter.operations(tenant, count: 3)
        meter.bytesIn(tenant, 100)
        meter.bytesOut(tenant, 40)
        let first = meter.drain()
        #expect(first.count == 1)
        #expect(first.first.map { ($0.operations, $0.bytesIn, $0.bytesOut) } ?? (0, 0, 0) == (3, 100, 40))
        #expect(first.first?.periodStart == Date(timeIntervalSince1970: hour))
        // Nothing new: nothing handed out again.
        #expect(meter.drain().isEmpty)
    }

    @Test func connectionSecondsSplitAtHourBoundariesAndPeaksCount() {
        let clock = TestClock()
        clock.set(hour + 3600 - 30)
        let meter = UsageMeter(now: clock.now)
        meter.connectionOpened(tenant)
        meter.connectionOpened(tenant)
        clock.set(hour + 3600 + 15)  // 30 s in the first hour, 15 s in the next, two connections
        meter.connectionClosed(tenant)
        clock.set(hour + 3600 + 25)  // one more connection-second... ten of them
        let deltas = meter.drain().sorted { $0.periodStart < $1.periodStart }
        #expect(deltas.map(\.connectionSeconds) == [60, 30 + 10])
        #expect(deltas.map(\.peakConnections) == [2, 2])
        // Fractions stay behind and are handed out once whole.
        clock.set(hour + 3600 + 25.5)
        #expect(meter.drain().map(\.connectionSeconds).reduce(0, +) == 0)
        clock.set(hour + 3600 + 26)
        #expect(meter.drain().map(\.connectionSeconds) == [1])
    }

    @Test func storageMeasurementsTravelWithTheCurrentHour() {
        let clock = TestClock()
        clock.set(hour + 5)
        let meter = UsageMeter(now: clock.now)
        meter.storageMeasured([tenant: 1234])
        #expect(meter.drain().map(\.storageBytes) == [1234])
        meter.operations(tenant, count: 1)
        #expect(meter.drain().map(\.storageBytes) == [1234])
        meter.storageMeasured([:])
        #expect(meter.drain().map(\.storageBytes) == [0])
    }
}
