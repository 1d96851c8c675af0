import ArgumentParser
import Foundation
import TopGunCore
import TopGunWire

/// `topgun wire`: inspect and make protocol frames.
struct WireCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Decode or encode one TopGun protocol message.",
        subcommands: [Decode.self, Encode.self]
    )

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read one raw MessagePack message and print it as JSON.",
            discussion: """
                Binary fields print as {"type":"Buffer","data":[bytes]}, whole numbers as \
                integers, absent optional fields are absent. An input that is not a valid \
                message prints one line on stderr and exits with status 1.
                """
        )

        @Argument(help: "A file holding the message, or - for standard input (the default).")
        var path: String = "-"

        @Flag(help: "Indent the JSON.")
        var pretty = false

        func run() throws {
            let bytes = try readInput(path)
            do {
                let message = try WireCodec().decode(bytes)
                // A server refuses such ops one by one; printed, they would look like ops.
                if let problem = message.opDecodingProblems.first { fail("not a valid TopGun message: \(problem)") }
                print(JSONWriter.string(WireCodec.dataValue(of: message), pretty: pretty))
            } catch {
                fail("not a valid TopGun message: \(error)")
            }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read one message as JSON and write it as raw MessagePack on stdout.",
            discussion: """
                The JSON follows the conventions of `topgun wire decode`. An input that is not \
                a valid message prints one line on stderr and exits with status 1.
                """
        )

        @Argument(help: "A file holding the JSON, or - for standard input (the default).")
        var path: String = "-"

        func run() throws {
            let bytes = try readInput(path)
            let codec = WireCodec()
            do {
                let message = try codec.message(from: JSONFrameReader().decode(bytes))
                FileHandle.standardOutput.write(Data(codec.encode(message)))
            } catch {
                fail("not a valid TopGun message: \(error)")
            }
        }
    }
}

/// Reads a whole file, or standard input for "-".
private func readInput(_ path: String) throws -> [UInt8] {
    if path == "-" {
        return [UInt8](FileHandle.standardInput.readDataToEndOfFile())
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        fail("cannot read \(path)")
    }
    return [UInt8](data)
}

/// Prints one line on stderr and exits with status 1.
private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("topgun: \(message)\n".utf8))
    exit(1)
}
