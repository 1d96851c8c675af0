import NIOCore

/// Splits a cluster connection's byte stream into frames: a 4-byte big-endian length, then
/// that many bytes of payload. swift-nio-extras' `LengthFieldBasedFrameDecoder` would do, but
/// the package does not depend on it, and the rules here are few:
///
/// - A length above `maxFrameBytes` is refused as soon as the 4 bytes are in, before any of
///   the payload is buffered, so a hostile length costs nothing.
/// - A zero length is refused: every message is a non-empty map.
/// - An incomplete frame waits for more bytes; bytes left at EOF are dropped.
struct ClusterFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case frameTooLarge(size: Int, limit: Int)
        case emptyFrame

        var description: String {
            switch self {
            case .frameTooLarge(let size, let limit): "frame of \(size) bytes exceeds the limit of \(limit) bytes"
            case .emptyFrame: "frame of length zero"
            }
        }
    }

    static let lengthFieldBytes = 4

    let maxFrameBytes: Int

    init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// The next whole frame's payload in `buffer`, consumed; nil (and `buffer` untouched)
    /// while the frame is incomplete. Pure, so the rules are tested without a channel.
    static func nextFrame(in buffer: inout ByteBuffer, maxFrameBytes: Int) throws(Failure) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        let size = Int(length)
        guard size > 0 else { throw .emptyFrame }
        guard size <= maxFrameBytes else { throw .frameTooLarge(size: size, limit: maxFrameBytes) }
        guard buffer.readableBytes >= lengthFieldBytes + size else { return nil }
        buffer.moveReaderIndex(forwardBy: lengthFieldBytes)
        return buffer.readSlice(length: size)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(in: &buffer, maxFrameBytes: maxFrameBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
