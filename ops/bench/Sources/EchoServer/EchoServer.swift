import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging

/// The ceiling for the throughput benchmark: a WebSocket server on the data plane's own stack
/// (Hummingbird 2 + hummingbird-websocket, the same upgrade path, `messages(maxSize:)` reader,
/// 2 MiB frames and auto-ping as `DataPlaneServer`) that writes every message back.
///
/// Usage: EchoServer [--port P]   prints one JSON line {"url": "ws://127.0.0.1:P/ws"} once bound.
@main
struct EchoServer {
    static func main() async throws {
        let args = CommandLine.arguments
        let port: Int
        if let i = args.firstIndex(of: "--port"), i + 1 < args.count, let p = Int(args[i + 1]) { port = p } else { port = 0 }
        var logger = Logger(label: "echo")
        logger.logLevel = .warning
        let maxFrame = 2 * 1024 * 1024
        let server = HTTPServerBuilder.http1WebSocketUpgrade(
            configuration: .init(maxFrameSize: maxFrame, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: .seconds(5))
        ) { _, _, _ in
            .upgrade([:]) { inbound, outbound, _ in
                do {
                    for try await message in inbound.messages(maxSize: maxFrame) {
                        switch message {
                        case .binary(let buffer): try await outbound.write(.binary(buffer))
                        case .text(let text): try await outbound.write(.text(text))
                        }
                    }
                } catch {}
            }
        }
        let app = Application(
            router: Router(),
            server: server,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "echo"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let line = "{\"url\": \"ws://127.0.0.1:\(bound)/ws\", \"pid\": \(ProcessInfo.processInfo.processIdentifier)}\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger
        )
        try await app.runService()
    }
}
