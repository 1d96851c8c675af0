import Foundation
import TopGunCore
import TopGunWire

/// The shared wire fixtures (protocol.md §11.7): `../shared/fixtures/topgun-wire` next to the
/// repository, or the folder named by `TOPGUN_FIXTURES`.
enum Fixtures {
    static let minimumCount = 63

    static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["TOPGUN_FIXTURES"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        // This file is <repo>/Tests/TopGunWireTests/TestSupport.swift.
        let repositoryRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
        return repositoryRoot
            .appendingPathComponent("..", isDirectory: true)
            .appendingPathComponent("shared/fixtures/topgun-wire", isDirectory: true)
            .standardizedFileURL
    }

    /// Names (without extension) of every `.msgpack` fixture, sorted; empty when the folder is missing.
    static let names: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".msgpack") }.map { String($0.dropLast(".msgpack".count)) }.sorted()
    }()

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name + ".msgpack")))
    }

    static func json(_ name: String) throws -> String {
        try String(decoding: Data(contentsOf: directory.appendingPathComponent(name + ".json")), as: UTF8.self)
    }
}

/// Bytes from hex text; spaces and line breaks are ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Hex text of bytes, for readable failure messages.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Encodes a dynamic value as a frame, as a peer would send it.
func frame(_ value: DataValue) -> [UInt8] {
    MessagePackWriter.encode(value)
}

/// The error decoding `bytes` throws, or nil when it decodes.
func decodingError(_ bytes: [UInt8], codec: WireCodec = WireCodec()) -> WireDecodingError? {
    do {
        _ = try codec.decode(bytes)
        return nil
    } catch {
        return error
    }
}

/// Encodes a value the way the TypeScript client's msgpackr does (protocol.md §6.2): every
/// map as map16, integers in [-2^31, 2^32-1] in the smallest integer form, every other
/// number as float64.
func msgpackrBytes(_ value: DataValue) -> [UInt8] {
    var out: [UInt8] = []
    func bigEndian<T: FixedWidthInteger>(_ number: T) {
        withUnsafeBytes(of: number.bigEndian) { out.append(contentsOf: $0) }
    }
    func number(_ double: Double) {
        if double.rounded(.towardZero) == double, double >= -2_147_483_648, double <= 4_294_967_295 {
            var writer = MessagePackWriter()
            writer.writeInt(Int64(double))
            out.append(contentsOf: writer.bytes)
        } else {
            out.append(0xcb)
            bigEndian(double.bitPattern)
        }
    }
    func write(_ value: DataValue) {
        switch value {
        case .int(let i): number(Double(i))
        case .uint(let u): number(Double(u))
        case .double(let d): number(d)
        case .array(let elements):
            var writer = MessagePackWriter()
            writer.writeArrayHeader(elements.count)
            out.append(contentsOf: writer.bytes)
            elements.forEach(write)
        case .object(let object):
            out.append(0xde)
            bigEndian(UInt16(object.count))
            for field in object.fields {
                write(.string(field.key))
                write(field.value)
            }
        default:
            out.append(contentsOf: MessagePackWriter.encode(value))
        }
    }
    write(value)
    return out
}
