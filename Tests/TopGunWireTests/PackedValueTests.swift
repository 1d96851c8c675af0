import PropertyBased
import Testing
import TopGunCore
@testable import TopGunWire

/// Record values kept as the MessagePack they arrived in (`PackedValue`): packed only when
/// reading them back later gives exactly what decoding them now would, written out as the
/// same bytes, and equal to the decoded value in every comparison.
@Suite struct PackedValueTests {
    /// A deterministic value of every plain kind, nested up to `depth`.
    static func value(_ seed: inout UInt64, depth: Int = 0) -> DataValue {
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 17
        }
        let texts = ["", "title", "x", "caf\u{e9}", "e\u{301}", "😀 emoji", "中文", String(repeating: "long ", count: 12)]
        switch next() % (depth < 3 ? 10 : 7) {
        case 0: return .null
        case 1: return .bool(next() % 2 == 0)
        case 2: return .int(Int64(bitPattern: next() << 17) >> Int64(next() % 63))
        case 3: return .double(Double(Int64(next() % 2_000_000) - 1_000_000) / 7)
        case 4: return .string(texts[Int(next() % UInt64(texts.count))])
        case 5: return .binary((0..<Int(next() % 5)).map { _ in UInt8(next() % 256) })
        case 6: return .uint(UInt64(Int64.max) + 1 + next())
        case 7, 8:
            return .object(DataObject(fields: (0..<Int(next() % 4)).map { index in
                DataObject.Field(key: texts[Int(next() % UInt64(texts.count))] + String(index), value: value(&seed, depth: depth + 1))
            }))
        default:
            return .array((0..<Int(next() % 4)).map { _ in value(&seed, depth: depth + 1) })
        }
    }

    static func readRecordValue(_ bytes: [UInt8], limits: MessagePackLimits = .default) throws(WireDecodingError) -> RecordValue? {
        let result: Result<RecordValue?, WireDecodingError> = bytes.withUnsafeBufferPointer { buffer in
            var cursor = Cursor(base: buffer, limits: limits)
            do throws(WireDecodingError) {
                let value = try cursor.readRecordValue(depth: 0)
                #expect(cursor.position == buffer.count, "the cursor is past the value")
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    @Test func plainValuesArePackedReadBackAndWrittenAsTheyArrived() async {
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            var state = seed
            let value = Self.value(&state)
            // Our writer's smallest forms, and the TypeScript client's (map16, float64).
            for bytes in [MessagePackWriter.encode(value), msgpackrBytes(value)] {
                let read = try Self.readRecordValue(bytes)
                if value == .null {
                    #expect(read == nil, "nil is a tombstone")
                    continue
                }
                guard case .packed(let packed)? = read else {
                    Issue.record("\(value) was not packed")
                    continue
                }
                #expect(packed.bytes == bytes)
                #expect(packed.decoded == (try MessagePackReader().decode(bytes)))
                var writer = MessagePackWriter()
                writer.write(RecordValue.packed(packed))
                #expect(writer.bytes == bytes)
            }
        }
    }

    /// Outside the plain subset the decoder decides, as it did before values were packed:
    /// the same value (extensions converted, scalar keys turned into strings) or the same error.
    @Test(arguments: [
        "d6ff00000001",  // timestamp extension: milliseconds
        "d40001",  // msgpackr's undefined: nil
        "810102",  // an integer map key becomes "1"
        "81c3c0",  // a boolean key
        "a2c328",  // invalid UTF-8
        "a3eda080",  // a surrogate
        "a2c0af",  // an overlong form
        "c1",  // never used
        "92a1",  // truncated
        "dc0010",  // an array declaring more elements than bytes follow
        "c7011200",  // an unknown extension
        "8ba178c0",  // a map declaring more entries than bytes follow
    ])
    func otherValuesAreDecodedAsBefore(_ text: String) {
        let bytes = hex(text)
        let expected = Result { () throws(WireDecodingError) in try MessagePackReader().decode(bytes) }
        let actual = Result { () throws(WireDecodingError) in try Self.readRecordValue(bytes) }
        switch (expected, actual) {
        case (.success(let value), .success(let read)):
            if value.isNull {
                #expect(read == nil)
            } else if case .decoded(let decoded)? = read {
                #expect(decoded == value)
            } else {
                Issue.record("\(text) should be decoded, got \(String(describing: read))")
            }
        case (.failure(let error), .failure(let readError)):
            #expect(readError.kind == error.kind)
        default:
            Issue.record("\(text): decoder \(expected), record value \(actual)")
        }
    }

    @Test func nestingDeeperThanTheLimitIsLeftToTheDecoder() {
        let limits = MessagePackLimits(maxDepth: 3)
        let deep = [UInt8](repeating: 0x91, count: 5) + [0x01]
        #expect(throws: WireDecodingError.self) { _ = try Self.readRecordValue(deep, limits: limits) }
        let shallow = [UInt8](repeating: 0x91, count: 3) + [0x01]
        guard case .packed? = try? Self.readRecordValue(shallow, limits: limits) else {
            Issue.record("three levels are within the limit")
            return
        }
    }

    @Test func utf8ValidationAgreesWithTheStandardLibrary() async {
        let interesting: [UInt8] = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xa0, 0xed, 0x9f, 0xee, 0xef, 0xf0, 0x90, 0xf4, 0x8f, 0xf5, 0xff]
        await propertyCheck(count: 2000, input: Gen.int(in: 0...(interesting.count - 1)).array(of: 0...6)) { indices in
            let bytes = indices.map { interesting[$0] }
            let valid = bytes.withUnsafeBufferPointer(UTF8Text.isValid)
            #expect(valid == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }

    @Test func aPackedRecordEqualsItsDecodedTwin() {
        let value: DataValue = ["title": "caf\u{e9}", "done": false, "priority": 3]
        let timestamp = Timestamp(millis: 1, counter: 2, nodeId: "n")
        let packed = LWWRecord(payload: .packed(MessagePackFormat.pack(value)), timestamp: timestamp)
        let decoded = LWWRecord(value: value, timestamp: timestamp)
        #expect(packed == decoded)
        #expect(packed.hashValue == decoded.hashValue)
        #expect(packed.value == value)
        #expect(!packed.isTombstone)
        #expect(packed != LWWRecord(value: ["title": "cafe\u{301}", "done": false, "priority": 3], timestamp: timestamp))
    }
}
