@testable import DataPlane
import Testing
import TopGunCore
import TopGunWire

extension StorageTests {
    @Suite("StoredValueCodec")
    struct StoredValueCodecTests {
        @Test(arguments: StorageFixtures.everyKind.map(\.value))
        func roundTripsExactly(_ value: StoredValue) throws {
            let bytes = StoredValueCodec.encode(value)
            let decoded = try StoredValueCodec.decode(bytes, kind: value.kind)
            #expect(decoded == value)
            // Bit for bit: re-encoding gives the same bytes (so doubles, tags, timestamps and
            // key order all survived).
            #expect(StoredValueCodec.encode(decoded) == bytes)
        }

        @Test func aTombstoneAndALiveNullStayDistinct() throws {
            let tombstone = StoredValue.lww(LWWRecord(value: nil, timestamp: StorageFixtures.timestamp(5)))
            let liveNull = StoredValue.lww(LWWRecord(value: .null, timestamp: StorageFixtures.timestamp(5)))
            guard case .lww(let a) = try StoredValueCodec.decode(StoredValueCodec.encode(tombstone), kind: .lww),
                case .lww(let b) = try StoredValueCodec.decode(StoredValueCodec.encode(liveNull), kind: .lww)
            else { Issue.record("not LWW"); return }
            #expect(a.isTombstone)
            #expect(!b.isTombstone)
            #expect(b.value == .null)
        }

        @Test func numbersKeepTheirExactBits() throws {
            let ttl = 0.1 + 0.2
            let value = StoredValue.lww(LWWRecord(value: .double(-0.0), timestamp: Timestamp(millis: .max, counter: .min, nodeId: ""), ttlMs: ttl))
            guard case .lww(let record) = try StoredValueCodec.decode(StoredValueCodec.encode(value), kind: .lww) else {
                Issue.record("not LWW"); return
            }
            #expect(record.ttlMs?.bitPattern == ttl.bitPattern)
            #expect(record.timestamp == Timestamp(millis: .max, counter: .min, nodeId: ""))
            guard case .double(let zero)? = record.value else { Issue.record("not a double"); return }
            #expect(zero.sign == .minus)
        }

        /// The payload format is stored data: a change to it must be deliberate.
        @Test func theLWWPayloadFormatIsPinned() {
            let value = StoredValue.lww(LWWRecord(value: .string("hi"), timestamp: Timestamp(millis: 1, counter: 2, nodeId: "n"), ttlMs: 0.5))
            let expected: [UInt8] = [
                0x83,
                0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65, 0xa2, 0x68, 0x69,  // value: "hi"
                0xa9, 0x74, 0x69, 0x6d, 0x65, 0x73, 0x74, 0x61, 0x6d, 0x70,  // timestamp:
                0x83, 0xa6, 0x6d, 0x69, 0x6c, 0x6c, 0x69, 0x73, 0x01,  // {millis: 1,
                0xa7, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x65, 0x72, 0x02,  //  counter: 2,
                0xa6, 0x6e, 0x6f, 0x64, 0x65, 0x49, 0x64, 0xa1, 0x6e,  //  nodeId: "n"}
                0xa5, 0x74, 0x74, 0x6c, 0x4d, 0x73, 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,  // ttlMs: 0.5
            ]
            #expect(StoredValueCodec.encode(value) == expected)
            // And it is the wire form: the protocol's own decoder reads it.
            #expect(throws: Never.self) { try LWWRecord(wire: MessagePackReader().decode(expected)) }
        }

        @Test func everyTruncationIsATypedError() {
            for value in StorageFixtures.everyKind.map(\.value) {
                let bytes = StoredValueCodec.encode(value)
                for length in 0..<bytes.count {
                    #expect(throws: StorageError.self) { try StoredValueCodec.decode(bytes[..<length], kind: value.kind) }
                }
            }
        }

        @Test func theWrongShapeIsATypedError() {
            let cases: [(DataValue, StoredValue.Kind)] = [
                (.int(1), .lww),
                (.object(DataObject(fields: [.init(key: "value", value: .int(1))])), .lww),  // no timestamp
                (.object(DataObject(fields: [.init(key: "timestamp", value: .string("now"))])), .lww),
                (.object(DataObject(fields: [.init(key: "key", value: .int(3))])), .orMap),
                (.object(DataObject(fields: [.init(key: "key", value: .string("k")), .init(key: "records", value: .array([.int(1)]))])), .orMap),
                (.object(DataObject(fields: [.init(key: "p", value: .array([]))])), .counter),
                (.object(DataObject(fields: [.init(key: "p", value: .object(DataObject(fields: [.init(key: "n", value: .string("x"))])))])), .counter),
            ]
            for (shape, kind) in cases {
                #expect(throws: StorageError.self) { try StoredValueCodec.decode(MessagePackWriter.encode(shape), kind: kind) }
            }
        }

        @Test func randomBytesNeverCrash() {
            var generator = SplitMix64(seed: 0x5eed)
            for _ in 0..<5_000 {
                let length = Int(generator.next() % 48)
                let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                for kind in StoredValue.Kind.allCases {
                    _ = try? StoredValueCodec.decode(bytes, kind: kind)
                }
            }
        }
    }
}

/// A small deterministic random number generator for reproducible tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
