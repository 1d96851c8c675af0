import BatchFrames
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `idle`: opens and authenticates N connections, then holds them. Prints a JSON line
/// `{"event": "ready", ...}` once all are authenticated (the orchestrating script then reads
/// the server's RSS), holds them `--hold` seconds (answering pings), and prints the figure.
struct Idle: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open and hold many idle authenticated connections.")

    @Option var url: String
    @Option var token: String = ""
    @Option var connections: Int = 10_000
    @Option(help: "Handshakes in flight while connecting.") var concurrency: Int = 200
    @Option(help: "Source addresses 127.0.0.1 ... 127.0.0.N to spread the ephemeral ports over.") var sources: Int = 1
    @Option(help: "Seconds to hold the connections after all are up.") var hold: Double = 10
    @Option var threads: Int = 2
    @Flag(help: "The peer is the echo server: the echoed AUTH frame counts as the handshake (the stack's own cost per connection).")
    var echo = false

    func run() throws {
        let endpoint = try Endpoint(url: url)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tally = Tally()
        let auth = authFrame(token: token)
        let echo = self.echo
        let start = Date()
        let rssBefore = selfRSSKiB()
        openConnections(
            count: connections, concurrency: concurrency, sources: sources, group: group, endpoint: endpoint, tally: tally,
            settledCount: { tally.count("authenticated") + tally.count("connect_failed") + tally.count("closed_early") }
        ) { index in
            IdleDriver(index: index, auth: auth, echo: echo, tally: tally)
        }
        wait(timeout: 120) { tally.count("authenticated") + tally.count("connect_failed") + tally.count("closed_early") >= connections }
        let elapsed = Date().timeIntervalSince(start)
        let authenticated = tally.count("authenticated")
        emit([
            "event": "ready", "connections": connections, "authenticated": authenticated,
            "failed": tally.count("connect_failed") + tally.count("closed_early"), "connect_s": elapsed,
            "generator_rss_kib": selfRSSKiB(), "first_errors": tally.firstErrors.withLock { $0 },
        ])
        sleep(seconds: hold)
        let stillOpen = authenticated - tally.count("closed_after_auth")
        emit([
            "figure": "idle_generator", "connections": connections, "authenticated": authenticated, "still_open": stillOpen,
            "connect_s": elapsed, "generator_rss_growth_kib": selfRSSKiB() - rssBefore,
            "errors": tally.count("errors"), "first_errors": tally.firstErrors.withLock { $0 },
        ])
        Foundation.exit(authenticated == connections && stillOpen == connections ? 0 : 1)
    }
}

final class IdleDriver: WSDriver, @unchecked Sendable {
    let index: Int
    let auth: [UInt8]
    let echo: Bool
    let tally: Tally
    private var authenticated = false

    init(index: Int, auth: [UInt8], echo: Bool, tally: Tally) {
        self.index = index
        self.auth = auth
        self.echo = echo
        self.tally = tally
    }

    func opened(_ connection: WSConnection) { connection.send(auth) }

    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64) {
        switch echo ? .authAck : message.scan(inboundKind) {
        case .authAck:
            if !authenticated {
                authenticated = true
                tally.add("authenticated")
            }
        case .authFail, .error:
            tally.error("connection \(index): " + String(decoding: message.readableBytesView.prefix(200).map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x2e }, as: UTF8.self))
        default:
            break
        }
    }

    func closed(_ connection: WSConnection, error: String?) {
        if authenticated {
            tally.add("closed_after_auth")
        } else {
            tally.add("closed_early")
        }
        if let error, tally.count("errors") < 50 { tally.error("connection \(index): \(error)") }
    }
}
