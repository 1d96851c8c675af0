import Foundation
import Testing
import TopGunCore
import TopGunWire

/// The 63 samples a real TypeScript client produced (protocol.md §11.7) decode to the typed
/// model without losing a field, and the model re-encodes to the same message.
@Suite struct FixtureTests {
    @Test func fixtureFolderHoldsEveryFixture() throws {
        let directory = Fixtures.directory
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
        try #require(exists && isDirectory.boolValue, "fixture folder missing: \(directory.path) (set TOPGUN_FIXTURES)")
        #expect(
            Fixtures.names.count >= Fixtures.minimumCount,
            "only \(Fixtures.names.count) .msgpack fixtures in \(directory.path)")
        for name in Fixtures.names {
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(name + ".json").path), "\(name).json missing")
        }
    }

    @Test(arguments: Fixtures.names)
    func fixtureDecodesToExactlyItsJSON(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        let expected = try JSONFrameReader().decode(try Fixtures.json(name))

        // The pair itself agrees (numbers by value, key order ignored).
        #expect(try MessagePackReader().decode(bytes) == expected, "\(name).msgpack and \(name).json differ")

        let message = try WireCodec().decode(bytes)
        let typed = WireCodec.dataValue(of: message)
        #expect(typed == expected, "\(name): typed model gives \(JSONWriter.string(typed))")

        let expectedType = expected.objectValue?["type"]?.stringValue ?? ""
        #expect(message.type == expectedType)
    }

    @Test(arguments: Fixtures.names)
    func fixtureSurvivesEncodeAndDecode(name: String) throws {
        let codec = WireCodec()
        let message = try codec.decode(try Fixtures.bytes(name))
        let encoded = codec.encode(message)
        let again = try codec.decode(encoded)
        #expect(again == message)
        #expect(WireCodec.dataValue(of: again) == WireCodec.dataValue(of: message))
    }

    @Test(arguments: Fixtures.names)
    func fixtureJSONTextDecodesLikeItsMessagePack(name: String) throws {
        let codec = WireCodec()
        let fromMessagePack = try codec.decode(try Fixtures.bytes(name))
        let fromJSON = try codec.decode(json: try Fixtures.json(name))
        #expect(fromJSON == fromMessagePack)
    }
}
