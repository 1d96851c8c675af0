import BatchFrames
import NIOCore
import NIOPosix

/// What a benchmark does with one connection. Every call happens on the connection's event
/// loop, so a driver needs no locks for its own state.
protocol WSDriver: AnyObject {
    /// The upgrade succeeded.
    func opened(_ connection: WSConnection)
    /// One whole message (binary or text), unmasked. `receivedAt` is taken as soon as the
    /// bytes were read, before any parsing, in monotonic nanoseconds.
    func received(_ connection: WSConnection, message: ByteBuffer, receivedAt: UInt64)
    /// The socket closed (or the upgrade failed: `error`).
    func closed(_ connection: WSConnection, error: String?)
}

/// Monotonic nanoseconds (the same clock in every thread of this process).
@inline(__always) func monotonicNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// A minimal WebSocket client on a raw NIO channel: it writes the HTTP upgrade request,
/// reads the 101 answer, then parses server frames (unmasked; fragments joined; pings
/// answered) and writes masked binary frames.
///
/// Why not a WebSocket client library: the generator shares two cores with the server, so
/// its cost per frame matters. Frames are masked eight bytes at a time (NIO's encoder and
/// the server's decoder do it a byte at a time), no task is woken per message, and the
/// receive time is taken the moment the socket read returns.
final class WSConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let host: String
    let port: Int
    let path: String
    let driver: any WSDriver
    let index: Int
    private(set) var context: ChannelHandlerContext?
    private var pending: ByteBuffer?
    private var fragments: ByteBuffer?
    private var upgraded = false
    private var didClose = false
    /// The status code of the server's close frame, if it sent one.
    private(set) var closeCode: Int?
    private let maskKey: (UInt8, UInt8, UInt8, UInt8)
    private let mask64: UInt64

    init(host: String, port: Int, path: String, index: Int, driver: any WSDriver) {
        self.host = host
        self.port = port
        self.path = path
        self.index = index
        self.driver = driver
        var generator = SystemRandomNumberGenerator()
        let key = UInt32.random(in: 1...UInt32.max, using: &generator)
        maskKey = (UInt8(truncatingIfNeeded: key), UInt8(truncatingIfNeeded: key >> 8), UInt8(truncatingIfNeeded: key >> 16), UInt8(truncatingIfNeeded: key >> 24))
        // Little-endian: byte j of the word in memory is key[j % 4].
        mask64 = UInt64(key) | (UInt64(key) << 32)
    }

    var isOpen: Bool { upgraded && !didClose }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelActive(context: ChannelHandlerContext) {
        var nonce = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { nonce[i] = UInt8.random(in: 0...255) }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(base64(nonce))\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(error: upgraded ? nil : "connection closed before the upgrade")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(error: "\(error)")
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = monotonicNanos()
        var incoming = unwrapInboundIn(data)
        var buffer: ByteBuffer
        if var previous = pending {
            pending = nil
            previous.writeBuffer(&incoming)
            buffer = previous
        } else {
            buffer = incoming
        }
        if !upgraded {
            guard let end = Self.headerEnd(buffer) else {
                pending = buffer
                return
            }
            let head = buffer.readString(length: end) ?? ""
            guard head.hasPrefix("HTTP/1.1 101") else {
                finish(error: "upgrade refused: \(head.split(separator: "\r\n").first ?? "")")
                context.close(promise: nil)
                return
            }
            upgraded = true
            driver.opened(self)
        }
        parseFrames(&buffer, receivedAt: now, context: context)
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
    }

    private func parseFrames(_ buffer: inout ByteBuffer, receivedAt: UInt64, context: ChannelHandlerContext) {
        while buffer.readableBytes >= 2 {
            let r = buffer.readerIndex
            let b0 = buffer.getInteger(at: r, as: UInt8.self)!
            let b1 = buffer.getInteger(at: r + 1, as: UInt8.self)!
            var length = Int(b1 & 0x7F)
            var header = 2
            if length == 126 {
                guard buffer.readableBytes >= 4 else { return }
                length = Int(buffer.getInteger(at: r + 2, as: UInt16.self)!)
                header = 4
            } else if length == 127 {
                guard buffer.readableBytes >= 10 else { return }
                length = Int(buffer.getInteger(at: r + 2, as: UInt64.self)!)
                header = 10
            }
            let masked = b1 & 0x80 != 0
            if masked { header += 4 }
            guard buffer.readableBytes >= header + length else { return }
            buffer.moveReaderIndex(forwardBy: header)
            var payload = buffer.readSlice(length: length)!
            if masked {
                // Servers do not mask; tolerate it anyway.
                let k = buffer.getBytes(at: r + header - 4, length: 4)!
                payload.withUnsafeMutableReadableBytes { p in for i in 0..<p.count { p[i] ^= k[i % 4] } }
            }
            let fin = b0 & 0x80 != 0
            let opcode = b0 & 0x0F
            switch opcode {
            case 0x1, 0x2:
                if fin { driver.received(self, message: payload, receivedAt: receivedAt) } else { fragments = payload }
            case 0x0:
                fragments?.writeBuffer(&payload)
                if fin, let whole = fragments {
                    fragments = nil
                    driver.received(self, message: whole, receivedAt: receivedAt)
                }
            case 0x9:
                writeFrame(opcode: 0xA, payload: payload.readableBytesView, flush: true)
            case 0x8:
                if payload.readableBytes >= 2, let code = payload.getInteger(at: payload.readerIndex, as: UInt16.self) { closeCode = Int(code) }
                writeFrame(opcode: 0x8, payload: payload.readableBytesView.prefix(2), flush: true)
                context.close(promise: nil)
                return
            default:
                break
            }
        }
    }

    /// Sends one binary message as a single masked frame.
    func send(_ bytes: [UInt8], flush: Bool = true) {
        writeFrame(opcode: 0x2, payload: bytes, flush: flush)
    }

    func flush() { context?.flush() }

    func close() {
        guard let context, isOpen else { return }
        writeFrame(opcode: 0x8, payload: [0x03, 0xE8], flush: true)
        context.close(promise: nil)
    }

    private func writeFrame<Bytes: Collection>(opcode: UInt8, payload: Bytes, flush: Bool) where Bytes.Element == UInt8 {
        guard let context else { return }
        let count = payload.count
        var out = context.channel.allocator.buffer(capacity: count + 14)
        out.writeInteger(0x80 | opcode)
        if count < 126 {
            out.writeInteger(UInt8(0x80 | count))
        } else if count <= 0xFFFF {
            out.writeInteger(UInt8(0x80 | 126))
            out.writeInteger(UInt16(count))
        } else {
            out.writeInteger(UInt8(0x80 | 127))
            out.writeInteger(UInt64(count))
        }
        out.writeInteger(maskKey.0)
        out.writeInteger(maskKey.1)
        out.writeInteger(maskKey.2)
        out.writeInteger(maskKey.3)
        let start = out.writerIndex - out.readerIndex
        out.writeBytes(payload)
        let mask64 = self.mask64
        let key = maskKey
        out.withUnsafeMutableReadableBytes { p in
            var i = 0
            let n = count
            let base = p.baseAddress! + start
            while i + 8 <= n {
                let v = (base + i).loadUnaligned(as: UInt64.self)
                (base + i).storeBytes(of: v ^ mask64, as: UInt64.self)
                i += 8
            }
            while i < n {
                let k: UInt8
                switch i & 3 { case 0: k = key.0; case 1: k = key.1; case 2: k = key.2; default: k = key.3 }
                base.storeBytes(of: base.load(fromByteOffset: i, as: UInt8.self) ^ k, toByteOffset: i, as: UInt8.self)
                i += 1
            }
        }
        if flush { context.writeAndFlush(wrapOutboundOut(out), promise: nil) } else { context.write(wrapOutboundOut(out), promise: nil) }
    }

    private func finish(error: String?) {
        guard !didClose else { return }
        didClose = true
        driver.closed(self, error: error)
    }

    private static func headerEnd(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { p -> Int? in
            guard p.count >= 4 else { return nil }
            for i in 0...(p.count - 4) where p[i] == 13 && p[i + 1] == 10 && p[i + 2] == 13 && p[i + 3] == 10 {
                return i + 4
            }
            return nil
        }
    }
}

func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
        out.append(table[Int(b0 >> 2)])
        out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
        out.append(i + 1 < bytes.count ? table[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
        out.append(i + 2 < bytes.count ? table[Int(b2 & 63)] : UInt8(ascii: "="))
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

/// Where to connect: parsed from a ws:// URL.
struct Endpoint: Sendable {
    var host: String
    var port: Int
    var path: String

    init(url: String) throws {
        guard url.hasPrefix("ws://") else { throw LoadError("only ws:// URLs: \(url)") }
        let rest = url.dropFirst(5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { throw LoadError("bad port in \(url)") }
            port = p
        } else {
            host = String(authority)
            port = 80
        }
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Opens one connection; `source` is a local IPv4 address to bind (127.0.0.x) or nil.
func connect(
    group: any EventLoopGroup, endpoint: Endpoint, source: String?, index: Int, driver: @escaping @Sendable () -> any WSDriver
) -> EventLoopFuture<any Channel> {
    var bootstrap = ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connectTimeout(.seconds(20))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler = WSConnection(host: endpoint.host, port: endpoint.port, path: endpoint.path, index: index, driver: driver())
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
    if let source {
        do {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
        } catch {
            return group.next().makeFailedFuture(error)
        }
    }
    return bootstrap.connect(host: endpoint.host, port: endpoint.port)
}
