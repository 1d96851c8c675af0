import Testing
import Tenancy
import TopGunCore
import TopGunWire
@testable import DataPlane

/// Every quota decision, without sockets: the rule at its edge, the error the client reads.
@Suite struct QuotaGateTests {
    static func detail(_ refusal: QuotaRefusal?, _ name: String) -> DataValue? {
        guard case .object(let details) = refusal?.errorMessage.details else { return nil }
        return details[name]
    }

    @Test func connectionsAreRefusedAtTheLimitWithTheQuotaNamed() {
        #expect(QuotaGate.connection(open: 2, limit: 3) == nil)
        let refusal = QuotaGate.connection(open: 3, limit: 3)
        #expect(refusal?.quota == .connections)
        #expect(refusal?.message == "quota max_connections (3) reached")
        #expect(QuotaGate.connection(open: 1_000_000, limit: .max) == nil)
    }

    @Test func operationsSpendASecondsBucketAndSayWhenToRetry() {
        var bucket: TokenBucket?
        let second: UInt64 = 1_000_000_000
        #expect(QuotaGate.operations(6, limit: 10, bucket: &bucket, nowNanos: 0) == nil)
        #expect(QuotaGate.operations(4, limit: 10, bucket: &bucket, nowNanos: 0) == nil)
        let refused = QuotaGate.operations(5, limit: 10, bucket: &bucket, nowNanos: 0)
        #expect(refused?.quota == .operationsPerSecond)
        #expect(refused?.retryAfterMs == 500)
        #expect(refused?.code == .rateLimited)
        #expect(Self.detail(refused, "quota") == .string("max_operations_per_second"))
        // Nothing was taken by the refusal: half a second later, five are there.
        #expect(QuotaGate.operations(5, limit: 10, bucket: &bucket, nowNanos: second / 2) == nil)
        // A batch of more than a second's worth costs a full bucket, never refused for ever.
        #expect(QuotaGate.operations(1_000, limit: 10, bucket: &bucket, nowNanos: 5 * second) == nil)
        // A new limit starts a new, full bucket.
        #expect(QuotaGate.operations(50, limit: 50, bucket: &bucket, nowNanos: 5 * second) == nil)
        // A limit of 0 allows nothing.
        var empty: TokenBucket?
        #expect(QuotaGate.operations(1, limit: 0, bucket: &empty, nowNanos: 0)?.retryAfterMs == 1000)
        var unlimited: TokenBucket?
        #expect(QuotaGate.operations(Int.max, limit: .max, bucket: &unlimited, nowNanos: 0) == nil)
        #expect(unlimited == nil, "no bucket kept without a limit")
    }

    @Test func messagesOverTheLimitAre413() {
        #expect(QuotaGate.message(bytes: 2048, limit: 2048) == nil)
        let refused = QuotaGate.message(bytes: 2049, limit: 2048)
        #expect(refused?.code == .tooLarge)
        #expect(refused?.retryAfterMs == nil, "for good: sending it again cannot help")
        #expect(refused?.opOutcome.code == .tooLarge)
        #expect(refused?.message == "message of 2049 bytes is larger than the tenant's max_message_bytes (2048)")
    }

    @Test func aFullStorageQuotaRefusesWritesButNotDeletes() {
        #expect(QuotaGate.write(isDelete: false, storedBytes: 99, limit: 100) == nil)
        #expect(QuotaGate.write(isDelete: false, storedBytes: 100, limit: 100)?.quota == .storageBytes)
        #expect(QuotaGate.write(isDelete: true, storedBytes: 1_000, limit: 100) == nil)
        #expect(QuotaGate.write(isDelete: false, storedBytes: .max, limit: .max) == nil)
        #expect(QuotaGate.write(isDelete: false, storedBytes: 100, limit: 100)?.opOutcome.success == false)
    }

    @Test func aNewMapPastTheLimitIsRefusedNamingIt() {
        #expect(QuotaGate.newMap("m", existing: 1, limit: 2) == nil)
        let refused = QuotaGate.newMap("orders", existing: 2, limit: 2)
        #expect(refused?.message == "the tenant may hold at most 2 maps (max_maps); 'orders' would be one more")
        #expect(refused?.code == .rateLimited)
    }

    @Test func liveSubscriptionsPastTheLimitWaitAMinute() {
        #expect(QuotaGate.liveSubscription(open: 4, limit: 5) == nil)
        let refused = QuotaGate.liveSubscription(open: 5, limit: 5)
        #expect(refused?.retryAfterMs == 60_000)
        #expect(Self.detail(refused, "limit") == .int(5))
    }

    @Test func everyQuotaHasItsStoredName() {
        #expect(Quota.allCases.map(\.rawValue) == [
            "max_connections", "max_operations_per_second", "max_message_bytes", "max_storage_bytes", "max_maps", "max_live_subscriptions",
        ])
    }
}
