import NIOCore
import TopGunCore
import TopGunWire

/// The first message each side of a cluster connection sends (see `ClusterHandshake`).
struct ClusterHello: Sendable, Equatable {
    var nodeId: NodeID
    var clusterId: String
    var protocolVersion: Int
    /// 32 random bytes, fresh per connection: they make every proof unique to its connection.
    var nonce: [UInt8]
}

/// One frame of the cluster protocol: a 4-byte big-endian length, then a MessagePack map
/// whose `k` says what it is. Bodies are opaque bytes (MessagePack the caller produced) and
/// travel as `bin`, last in the map, so they are copied once into the frame.
///
/// | kind | k | fields |
/// |---|---|---|
/// | hello | 1 | `n` node id, `c` cluster id, `v` protocol version, `x` nonce |
/// | proof | 2 | `p` HMAC-SHA256 proof |
/// | refuse | 3 | `r` reason |
/// | request | 4 | `id`, `t` type, `b` body |
/// | oneway | 5 | `t` type, `b` body |
/// | response | 6 | `id`, `b` body |
/// | failure | 7 | `id`, `m` message |
///
/// Unknown keys are ignored, so a later version may add some.
enum ClusterEnvelope: Sendable, Equatable {
    case hello(ClusterHello)
    case proof([UInt8])
    case refuse(reason: String)
    case request(id: UInt64, type: String, body: [UInt8])
    case oneway(type: String, body: [UInt8])
    case response(id: UInt64, body: [UInt8])
    case failure(id: UInt64, message: String)

    enum Kind: Int64, Sendable {
        case hello = 1, proof, refuse, request, oneway, response, failure
    }

    var kind: Kind {
        switch self {
        case .hello: .hello
        case .proof: .proof
        case .refuse: .refuse
        case .request: .request
        case .oneway: .oneway
        case .response: .response
        case .failure: .failure
        }
    }

    /// For logs: the kind's name in capitals, as the protocol documents name messages.
    var kindName: String {
        switch kind {
        case .hello: "HELLO"
        case .proof: "PROOF"
        case .refuse: "REFUSE"
        case .request: "REQUEST"
        case .oneway: "ONEWAY"
        case .response: "RESPONSE"
        case .failure: "FAILURE"
        }
    }
}

// MARK: - Encoding

extension ClusterEnvelope {
    /// The whole frame, length prefix included, ready to be written.
    func frame(maxFrameBytes: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(ClusterTransportError) -> ByteBuffer {
        var head = MessagePackWriter(reservingCapacity: 64)
        var body: [UInt8]?
        switch self {
        case .hello(let hello):
            head.writeMapHeader(5)
            head.writeField("k", kind: kind)
            head.writeString("n"); head.writeString(hello.nodeId.rawValue)
            head.writeString("c"); head.writeString(hello.clusterId)
            head.writeString("v"); head.writeInt(Int64(hello.protocolVersion))
            head.writeString("x"); head.writeBinary(hello.nonce)
        case .proof(let proof):
            head.writeMapHeader(2)
            head.writeField("k", kind: kind)
            head.writeString("p"); head.writeBinary(proof)
        case .refuse(let reason):
            head.writeMapHeader(2)
            head.writeField("k", kind: kind)
            head.writeString("r"); head.writeString(reason)
        case .request(let id, let type, let payload):
            head.writeMapHeader(4)
            head.writeField("k", kind: kind)
            head.writeString("id"); head.writeUInt(id)
            head.writeString("t"); head.writeString(type)
            head.writeString("b")
            body = payload
        case .oneway(let type, let payload):
            head.writeMapHeader(3)
            head.writeField("k", kind: kind)
            head.writeString("t"); head.writeString(type)
            head.writeString("b")
            body = payload
        case .response(let id, let payload):
            head.writeMapHeader(3)
            head.writeField("k", kind: kind)
            head.writeString("id"); head.writeUInt(id)
            head.writeString("b")
            body = payload
        case .failure(let id, let message):
            head.writeMapHeader(3)
            head.writeField("k", kind: kind)
            head.writeString("id"); head.writeUInt(id)
            head.writeString("m"); head.writeString(message)
        }
        let bodyCount = body?.count ?? 0
        let binHeaderBytes = body == nil ? 0 : (bodyCount <= Int(UInt8.max) ? 2 : bodyCount <= Int(UInt16.max) ? 3 : 5)
        let size = head.bytes.count + binHeaderBytes + bodyCount
        guard size <= maxFrameBytes, size <= Int(UInt32.max) else {
            throw .frameTooLarge(size: size, limit: maxFrameBytes)
        }
        var buffer = allocator.buffer(capacity: 4 + size)
        buffer.writeInteger(UInt32(size))
        buffer.writeBytes(head.bytes)
        if let body {
            // The bin header by hand: MessagePackWriter.writeBinary would copy the body into
            // its own array first, and bodies can be megabytes.
            if bodyCount <= Int(UInt8.max) {
                buffer.writeInteger(UInt8(0xc4))
                buffer.writeInteger(UInt8(bodyCount))
            } else if bodyCount <= Int(UInt16.max) {
                buffer.writeInteger(UInt8(0xc5))
                buffer.writeInteger(UInt16(bodyCount))
            } else {
                buffer.writeInteger(UInt8(0xc6))
                buffer.writeInteger(UInt32(bodyCount))
            }
            buffer.writeBytes(body)
        }
        return buffer
    }
}

extension MessagePackWriter {
    fileprivate mutating func writeField(_ key: String, kind: ClusterEnvelope.Kind) {
        writeString(key)
        writeInt(kind.rawValue)
    }
}

// MARK: - Decoding

/// Why a frame's payload is not a cluster message. The connection that sent it is closed.
struct ClusterEnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    var reason: String

    init(_ reason: String) { self.reason = reason }

    var description: String { reason }
}

extension ClusterEnvelope {
    /// Decodes one frame's payload (the bytes after the length prefix).
    static func decode(_ payload: ByteBuffer, maxFrameBytes: Int) throws(ClusterEnvelopeError) -> ClusterEnvelope {
        let limits = MessagePackLimits(maxInputBytes: max(maxFrameBytes, 1), maxDepth: 8, maxContainerCount: 64)
        let value: DataValue
        do {
            value = try MessagePackReader(limits: limits).decode(Array(payload.readableBytesView))
        } catch {
            throw ClusterEnvelopeError("undecodable frame: \(error)")
        }
        guard case .object(let map) = value else { throw ClusterEnvelopeError("frame is not a map") }
        let fields = Fields(map: map)
        let rawKind = try fields.integer("k")
        guard let kind = Kind(rawValue: rawKind) else { throw ClusterEnvelopeError("unknown frame kind \(rawKind)") }
        switch kind {
        case .hello:
            let version = try fields.integer("v")
            guard let protocolVersion = Int(exactly: version) else { throw ClusterEnvelopeError("v: out of range") }
            return .hello(ClusterHello(
                nodeId: NodeID(try fields.string("n")), clusterId: try fields.string("c"),
                protocolVersion: protocolVersion, nonce: try fields.binary("x")))
        case .proof:
            return .proof(try fields.binary("p"))
        case .refuse:
            return .refuse(reason: try fields.string("r"))
        case .request:
            return .request(id: try fields.unsigned("id"), type: try fields.string("t"), body: try fields.binary("b"))
        case .oneway:
            return .oneway(type: try fields.string("t"), body: try fields.binary("b"))
        case .response:
            return .response(id: try fields.unsigned("id"), body: try fields.binary("b"))
        case .failure:
            return .failure(id: try fields.unsigned("id"), message: try fields.string("m"))
        }
    }

    /// Typed reads of an envelope's fields, each naming the field when it is missing or wrong.
    private struct Fields {
        var map: DataObject

        func value(_ key: String) throws(ClusterEnvelopeError) -> DataValue {
            guard let value = map[key] else { throw ClusterEnvelopeError("\(key): required field is missing") }
            return value
        }

        func integer(_ key: String) throws(ClusterEnvelopeError) -> Int64 {
            guard case .int(let value) = try value(key) else { throw ClusterEnvelopeError("\(key): expected an integer") }
            return value
        }

        func unsigned(_ key: String) throws(ClusterEnvelopeError) -> UInt64 {
            switch try value(key) {
            case .int(let value) where value >= 0: return UInt64(value)
            case .uint(let value): return value
            default: throw ClusterEnvelopeError("\(key): expected an unsigned integer")
            }
        }

        func string(_ key: String) throws(ClusterEnvelopeError) -> String {
            guard case .string(let value) = try value(key) else { throw ClusterEnvelopeError("\(key): expected a string") }
            return value
        }

        func binary(_ key: String) throws(ClusterEnvelopeError) -> [UInt8] {
            guard case .binary(let value) = try value(key) else { throw ClusterEnvelopeError("\(key): expected binary") }
            return value
        }
    }
}
