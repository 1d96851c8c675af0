import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// The ceiling for the throughput benchmark: a WebSocket server on the data plane's own stack
/// (Hummingbird 2 + hummingbird-websocket, the same upgrade path, `messages(maxSize:)` reader,
/// 2 MiB frames and auto-ping as `DataPlaneServer`) that writes every message back.
///
/// Each connection's task runs on its channel's event loop, as the data plane's do
/// (`EventLoopTaskExecutor`); `--global-executor` leaves it on Swift's global pool instead,
/// the stack's default, measured as a reference.
///
/// Usage: EchoServer [--port P] [--global-executor]   prints one JSON line {"url": "ws://127.0.0.1:P/ws"} once bound.
@main
struct EchoServer {
    static func main() async throws {
        let args = CommandLine.arguments
        let port: Int
        if let i = args.firstIndex(of: "--port"), i + 1 < args.count, let p = Int(args[i + 1]) { port = p } else { port = 0 }
        var logger = Logger(label: "echo")
        logger.logLevel = .warning
        let maxFrame = 2 * 1024 * 1024
        let onEventLoop = !args.contains("--global-executor")
        let server = HTTPServerBuilder.http1WebSocketUpgrade(
            configuration: .init(ws: .init(maxFrameSize: maxFrame, autoPing: .enabled(timePeriod: .seconds(30)), closeTimeout: .seconds(5)))
        ) { _, channel, _ in
            .upgrade([:]) { inbound, outbound, _ in
                let executor: EventLoopTaskExecutor? = onEventLoop ? EventLoopTaskExecutor(channel.eventLoop) : nil
                await withTaskExecutorPreference(executor) {
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

/// As the data plane's: a connection's task runs on its channel's event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
