import PropertyBased
import Testing
import TopGunCore
import TopGunWire

/// MessagePack reading of every format family, and writing in the smallest form.
@Suite struct MessagePackTests {
    static func read(_ text: String) throws -> DataValue {
        try MessagePackReader().decode(hex(text))
    }

    static func readError(_ text: String) -> WireDecodingError.Kind? {
        do {
            _ = try MessagePackReader().decode(hex(text))
            return nil
        } catch {
            return error.kind
        }
    }

    // MARK: - Reading

    @Test func readsNilAndBooleans() throws {
        #expect(try Self.read("c0") == .null)
        #expect(try Self.read("c2") == .bool(false))
        #expect(try Self.read("c3") == .bool(true))
    }

    @Test func readsFixints() throws {
        #expect(try Self.read("00") == .int(0))
        #expect(try Self.read("7f") == .int(127))
        #expect(try Self.read("ff") == .int(-1))
        #expect(try Self.read("e0") == .int(-32))
    }

    @Test func readsUnsignedIntegersOfEveryWidth() throws {
        #expect(try Self.read("cc ff") == .int(255))
        #expect(try Self.read("cd ffff") == .int(65535))
        #expect(try Self.read("ce ffffffff") == .int(4_294_967_295))
        #expect(try Self.read("cf 0000000000000001") == .int(1))
        #expect(try Self.read("cf 7fffffffffffffff") == .int(Int64.max))
        #expect(try Self.read("cf ffffffffffffffff") == .uint(UInt64.max))
    }

    @Test func readsSignedIntegersOfEveryWidth() throws {
        #expect(try Self.read("d0 80") == .int(-128))
        #expect(try Self.read("d0 7f") == .int(127))
        #expect(try Self.read("d1 8000") == .int(-32768))
        #expect(try Self.read("d2 80000000") == .int(Int64(Int32.min)))
        #expect(try Self.read("d3 8000000000000000") == .int(Int64.min))
        #expect(try Self.read("d3 ffffffffffffffff") == .int(-1))
    }

    @Test func readsFloats() throws {
        #expect(try Self.read("ca 3fc00000") == .double(1.5))
        #expect(try Self.read("cb 3ff8000000000000") == .double(1.5))
        // msgpackr writes integers ≥ 2^32 (wall-clock millis) as float64.
        #expect(try Self.read("cb 4278bcfe56800000") == .double(1_700_000_000_000))
    }

    @Test func readsStringsOfEveryWidth() throws {
        #expect(try Self.read("a0") == .string(""))
        #expect(try Self.read("a3 616263") == .string("abc"))
        #expect(try Self.read("d9 03 616263") == .string("abc"))
        #expect(try Self.read("da 0003 616263") == .string("abc"))
        #expect(try Self.read("db 00000003 616263") == .string("abc"))
        #expect(try Self.read("a2 c3a9") == .string("é"))
    }

    @Test func readsBinaryOfEveryWidth() throws {
        #expect(try Self.read("c4 02 0102") == .binary([1, 2]))
        #expect(try Self.read("c5 0002 0102") == .binary([1, 2]))
        #expect(try Self.read("c6 00000002 0102") == .binary([1, 2]))
        #expect(try Self.read("c4 00") == .binary([]))
    }

    @Test func readsArraysOfEveryWidth() throws {
        #expect(try Self.read("90") == .array([]))
        #expect(try Self.read("92 01 02") == [1, 2])
        #expect(try Self.read("dc 0002 01 02") == [1, 2])
        #expect(try Self.read("dd 00000002 01 02") == [1, 2])
    }

    @Test func readsMapsOfEveryWidth() throws {
        #expect(try Self.read("80") == .object(DataObject()))
        #expect(try Self.read("81 a161 01") == ["a": 1])
        #expect(try Self.read("de 0001 a161 01") == ["a": 1])
        #expect(try Self.read("df 00000001 a161 01") == ["a": 1])
        #expect(try Self.read("82 a161 01 a162 92 c3 c0") == ["a": 1, "b": [true, .null]])
    }

    @Test func readsScalarMapKeysAsTheirJavaScriptText() throws {
        #expect(try Self.read("81 01 a178") == ["1": "x"])
        #expect(try Self.read("81 c3 01") == ["true": 1])
        #expect(Self.readError("81 90 01") == .invalidMapKey)
    }

    @Test func readsMsgpackrUndefinedAsNil() throws {
        #expect(try Self.read("d4 00 00") == .null)
        #expect(try Self.read("81 a161 d40000") == ["a": .null])
    }

    @Test func readsTimestampExtensionInItsThreeForms() throws {
        // 32-bit: seconds.
        #expect(try Self.read("d6 ff 00000001") == .int(1000))
        #expect(try Self.read("d6 ff 6553f100") == .int(1_700_000_000_000))
        // 64-bit: 30-bit nanoseconds, 34-bit seconds.
        #expect(try Self.read("d7 ff 7735940000000001") == .int(1500))
        #expect(try Self.read("d7 ff 003d09006553f100") == .int(1_700_000_000_001))
        // 96-bit: 32-bit nanoseconds, signed 64-bit seconds (ext8 with length 12).
        #expect(try Self.read("c7 0c ff 00000000 000000006553f100") == .int(1_700_000_000_000))
        #expect(try Self.read("c7 0c ff 00000000 ffffffffffffffff") == .int(-1000))
        // Sub-millisecond precision stays fractional.
        #expect(try Self.read("d7 ff 0000000400000000") == .double(0.000001))
    }

    @Test func rejectsEveryOtherExtension() {
        #expect(Self.readError("d4 05 00") == .unsupportedExtension(type: 5))
        #expect(Self.readError("d5 05 0000") == .unsupportedExtension(type: 5))
        #expect(Self.readError("d6 05 00000000") == .unsupportedExtension(type: 5))
        #expect(Self.readError("d7 05 0000000000000000") == .unsupportedExtension(type: 5))
        #expect(Self.readError("d8 05 00000000000000000000000000000000") == .unsupportedExtension(type: 5))
        #expect(Self.readError("c7 01 05 00") == .unsupportedExtension(type: 5))
        #expect(Self.readError("c8 0001 05 00") == .unsupportedExtension(type: 5))
        #expect(Self.readError("c9 00000001 05 00") == .unsupportedExtension(type: 5))
        // The timestamp type with a length it does not have.
        #expect(Self.readError("d5 ff 0000") == .unsupportedExtension(type: -1))
        // Undefined only as fixext1.
        #expect(Self.readError("d5 00 0000") == .unsupportedExtension(type: 0))
    }

    // MARK: - Writing

    static func written(_ value: DataValue) -> String {
        hexString(MessagePackWriter.encode(value))
    }

    @Test func writesScalars() {
        #expect(Self.written(.null) == "c0")
        #expect(Self.written(false) == "c2")
        #expect(Self.written(true) == "c3")
        #expect(Self.written(.double(1.5)) == "cb3ff8000000000000")
    }

    @Test func writesTheSmallestUnsignedForm() {
        #expect(Self.written(0) == "00")
        #expect(Self.written(127) == "7f")
        #expect(Self.written(128) == "cc80")
        #expect(Self.written(255) == "ccff")
        #expect(Self.written(256) == "cd0100")
        #expect(Self.written(65535) == "cdffff")
        #expect(Self.written(65536) == "ce00010000")
        #expect(Self.written(4_294_967_295) == "ceffffffff")
        #expect(Self.written(4_294_967_296) == "cf0000000100000000")
        #expect(Self.written(.int(Int64.max)) == "cf7fffffffffffffff")
        #expect(Self.written(.uint(UInt64.max)) == "cfffffffffffffffff")
    }

    @Test func writesTheSmallestSignedForm() {
        #expect(Self.written(-1) == "ff")
        #expect(Self.written(-32) == "e0")
        #expect(Self.written(-33) == "d0df")
        #expect(Self.written(-128) == "d080")
        #expect(Self.written(-129) == "d1ff7f")
        #expect(Self.written(-32768) == "d18000")
        #expect(Self.written(-32769) == "d2ffff7fff")
        #expect(Self.written(.int(Int64(Int32.min))) == "d280000000")
        #expect(Self.written(.int(Int64(Int32.min) - 1)) == "d3ffffffff7fffffff")
        #expect(Self.written(.int(Int64.min)) == "d38000000000000000")
    }

    @Test func writesTheSmallestStringForm() {
        func header(_ length: Int) -> String {
            String(Self.written(.string(String(repeating: "x", count: length))).prefix(length <= 31 ? 2 : 10))
        }
        #expect(Self.written("") == "a0")
        #expect(header(31).hasPrefix("bf"))
        #expect(header(32).hasPrefix("d920"))
        #expect(header(255).hasPrefix("d9ff"))
        #expect(header(256).hasPrefix("da0100"))
        #expect(header(65535).hasPrefix("daffff"))
        #expect(header(65536).hasPrefix("db00010000"))
        // Length counts UTF-8 bytes.
        #expect(Self.written("é") == "a2c3a9")
    }

    @Test func writesTheSmallestBinaryForm() {
        func header(_ length: Int) -> String {
            String(Self.written(.binary([UInt8](repeating: 7, count: length))).prefix(10))
        }
        #expect(Self.written(.binary([])) == "c400")
        #expect(header(255).hasPrefix("c4ff"))
        #expect(header(256).hasPrefix("c50100"))
        #expect(header(65535).hasPrefix("c5ffff"))
        #expect(header(65536).hasPrefix("c600010000"))
    }

    @Test func writesTheSmallestArrayForm() {
        func header(_ count: Int) -> String {
            String(Self.written(.array([DataValue](repeating: 1, count: count))).prefix(10))
        }
        #expect(Self.written([]) == "90")
        #expect(header(15).hasPrefix("9f01"))
        #expect(header(16).hasPrefix("dc0010"))
        #expect(header(65535).hasPrefix("dcffff"))
        #expect(header(65536).hasPrefix("dd00010000"))
    }

    @Test func writesTheSmallestMapForm() {
        func header(_ count: Int) -> String {
            let object = DataObject(fields: (0..<count).map { DataObject.Field(key: "k\($0)", value: 1) })
            return String(Self.written(.object(object)).prefix(10))
        }
        #expect(Self.written(.object(DataObject())) == "80")
        #expect(Self.written(["a": 1]) == "81a16101")
        #expect(header(15).hasPrefix("8f"))
        #expect(header(16).hasPrefix("de0010"))
        #expect(header(65535).hasPrefix("deffff"))
        #expect(header(65536).hasPrefix("df00010000"))
    }

    @Test func neverWritesAnExtension() throws {
        // Values that arrived as extensions go out as plain values.
        let decoded = try Self.read("93 d40000 d6ff00000001 c70cff00000000ffffffffffffffff")
        #expect(Self.written(decoded) == "93c0cd03e8d1fc18")
        let everything: DataValue = [
            "n": .null, "b": true, "i": -5, "u": .uint(UInt64.max), "d": 0.25, "s": "text",
            "bin": .binary([0, 255]), "a": [1, [2, ["x": 3]]], "o": ["nested": ["deep": .int(Int64.min)]],
        ]
        for byte in Self.formatBytes(MessagePackWriter.encode(everything)) {
            #expect(!(0xc7...0xc9).contains(byte) && !(0xd4...0xd8).contains(byte), "extension format 0x\(String(byte, radix: 16))")
        }
    }

    @Test func roundTripsNestedValues() throws {
        let value: DataValue = [
            "type": "X", "list": [1, -1, 300, -300, 70000, -70000, 5_000_000_000, -5_000_000_000, 1.25, "s", .null, false],
            "bin": .binary([1, 2, 3]), "map": ["a": ["b": ["c": []]]], "big": .uint(UInt64.max),
        ]
        #expect(try MessagePackReader().decode(MessagePackWriter.encode(value)) == value)
    }

    @Test func roundTripsAnyInteger() async {
        await propertyCheck(count: 500, input: Gen.int64()) { number in
            let decoded = try MessagePackReader().decode(MessagePackWriter.encode(.int(number)))
            #expect(decoded == .int(number))
        }
    }

    @Test func roundTripsAnyDouble() async {
        await propertyCheck(count: 500, input: Gen.double(in: -1e300...1e300)) { number in
            let decoded = try MessagePackReader().decode(MessagePackWriter.encode(.double(number)))
            #expect(decoded.doubleValue == number)
        }
    }

    @Test func roundTripsAnyString() async {
        await propertyCheck(count: 300, input: Gen.uint32(in: 0...0x10FFFF).array(of: 0...80)) { codePoints in
            var string = ""
            // Surrogate code points are not scalars; they stand for U+FFFD here.
            string.unicodeScalars.append(contentsOf: codePoints.map { Unicode.Scalar($0) ?? "\u{FFFD}" })
            let decoded = try MessagePackReader().decode(MessagePackWriter.encode(.string(string)))
            #expect(decoded == .string(string))
        }
    }

    /// The format byte of every value in `bytes` (a well-formed MessagePack value), in order.
    static func formatBytes(_ bytes: [UInt8]) -> [UInt8] {
        var position = 0
        var formats: [UInt8] = []
        func integer(_ size: Int) -> Int {
            var value = 0
            for _ in 0..<size { value = value << 8 | Int(bytes[position]); position += 1 }
            return value
        }
        func walk() {
            let byte = bytes[position]
            formats.append(byte)
            position += 1
            switch byte {
            case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: break
            case 0x80...0x8f: for _ in 0..<(Int(byte & 0x0f) * 2) { walk() }
            case 0x90...0x9f: for _ in 0..<Int(byte & 0x0f) { walk() }
            case 0xa0...0xbf: position += Int(byte & 0x1f)
            case 0xc4, 0xd9: position += integer(1)
            case 0xc5, 0xda: position += integer(2)
            case 0xc6, 0xdb: position += integer(4)
            case 0xcc, 0xd0: position += 1
            case 0xcd, 0xd1: position += 2
            case 0xca, 0xce, 0xd2: position += 4
            case 0xcb, 0xcf, 0xd3: position += 8
            case 0xdc: for _ in 0..<integer(2) { walk() }
            case 0xdd: for _ in 0..<integer(4) { walk() }
            case 0xde: for _ in 0..<(integer(2) * 2) { walk() }
            case 0xdf: for _ in 0..<(integer(4) * 2) { walk() }
            default: return  // an extension (or 0xc1): recorded, not followed
            }
        }
        while position < bytes.count { walk() }
        return formats
    }
}
