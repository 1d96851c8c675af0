import TopGunCore

/// Strings a connection sends in frame after frame, decoded once and then shared: today the
/// HLC node id of its writes. Every record a client writes carries that id; decoded per
/// frame, a map of a million records from one client would hold one copy per batch (and
/// free each as its last record is replaced); shared, it holds one.
public struct RepeatedStrings: Sendable {
    var nodeId = ""

    public init() {}
}

/// Turns frames into typed messages and back.
///
/// Decoding never traps: every malformed, truncated, oversized or mistyped frame becomes a
/// `WireDecodingError` naming the field and, where known, the byte offset.
public struct WireCodec: Sendable {
    public let limits: MessagePackLimits

    public init(limits: MessagePackLimits = .default) {
        self.limits = limits
    }

    /// Decodes a binary (MessagePack) frame.
    ///
    /// Every string in it must be valid UTF-8, member names and ignored values included. When
    /// the bad bytes lie inside an op (of `OP_BATCH`, `CLIENT_OP` or an HTTP sync body), that op
    /// alone comes out marked with its `decodingProblem` and the rest decodes; anywhere else
    /// the frame is refused with `invalidUTF8`.
    public func decode(_ bytes: [UInt8]) throws(WireDecodingError) -> TopGunMessage {
        if let batch = Self.fastOpBatch(bytes, limits: limits) { return .opBatch(batch) }
        return try generalDecode(bytes)
    }

    /// Decodes a binary frame in place (a network buffer's bytes): an `OP_BATCH`, the frame
    /// that matters for throughput, is read without copying the frame first. `repeated`
    /// carries strings from one frame of a connection to the next (see `RepeatedStrings`).
    /// Invalid UTF-8 is handled as by `decode(_:)`.
    public func decode(contiguous bytes: UnsafeBufferPointer<UInt8>, repeated: inout RepeatedStrings) throws(WireDecodingError) -> TopGunMessage {
        if let batch = Self.fastOpBatch(bytes, limits: limits, repeated: &repeated) { return .opBatch(batch) }
        return try generalDecode(Array(bytes))
    }

    /// The general decoder, and on invalid UTF-8 the op-by-op one (see `decode(_:)`).
    private func generalDecode(_ bytes: [UInt8]) throws(WireDecodingError) -> TopGunMessage {
        let value: DataValue
        do throws(WireDecodingError) {
            value = try MessagePackReader(limits: limits).decode(bytes)
        } catch {
            guard error.kind == .invalidUTF8 else { throw error }
            let marked = try bytes.withUnsafeBufferPointer { buffer throws(WireDecodingError) in try OpByOpDecoder.decode(buffer, codec: self) }
            guard let marked else { throw error }
            return marked
        }
        return try message(from: value)
    }

    /// Decodes a binary frame in place, sharing no strings with other frames.
    public func decode(contiguous bytes: UnsafeBufferPointer<UInt8>) throws(WireDecodingError) -> TopGunMessage {
        var repeated = RepeatedStrings()
        return try decode(contiguous: bytes, repeated: &repeated)
    }

    /// The `OP_BATCH` fast path; nil when the frame is anything else or unusual in any way.
    static func fastOpBatch(_ bytes: [UInt8], limits: MessagePackLimits) -> OpBatch? {
        var repeated = RepeatedStrings()
        return bytes.withUnsafeBufferPointer { fastOpBatch($0, limits: limits, repeated: &repeated) }
    }

    static func fastOpBatch(_ buffer: UnsafeBufferPointer<UInt8>, limits: MessagePackLimits, repeated: inout RepeatedStrings) -> OpBatch? {
        guard buffer.count <= limits.maxInputBytes else { return nil }
        var cursor = Cursor(base: buffer, limits: limits)
        guard let batch = OpBatchFastDecoder.decode(&cursor, repeated: &repeated), cursor.position == buffer.count else { return nil }
        return batch
    }

    /// Decodes a text (JSON) frame; the client and the legacy server accept these too.
    public func decode(json text: String) throws(WireDecodingError) -> TopGunMessage {
        try message(from: JSONFrameReader(limits: limits).decode(text))
    }

    /// Encodes a message as one MessagePack map.
    public func encode(_ message: TopGunMessage) -> [UInt8] {
        // The ack of every write batch: written directly, without the dynamic value tree.
        if case .opAck(let ack) = message { return Self.encode(ack) }
        var writer = MessagePackWriter(reservingCapacity: 128)
        writer.write(Self.dataValue(of: message))
        return writer.bytes
    }

    /// `OP_ACK`, byte for byte what the general path writes for it (tests compare the two).
    static func encode(_ ack: OpAck) -> [UInt8] {
        var writer = MessagePackWriter(reservingCapacity: 64 + (ack.results?.count ?? 0) * 56)
        writer.writeMapHeader(2)
        writer.writeString("type")
        writer.writeString(OpAck.type)
        writer.writeString("payload")
        writer.writeMapHeader(1 + (ack.achievedLevel == nil ? 0 : 1) + (ack.results == nil ? 0 : 1))
        writer.writeString("lastId")
        writer.writeString(ack.lastId)
        if let level = ack.achievedLevel {
            writer.writeString("achievedLevel")
            writer.writeString(level.rawValue)
        }
        if let results = ack.results {
            writer.writeString("results")
            writer.writeArrayHeader(results.count)
            for result in results {
                writer.writeMapHeader(result.error == nil ? 3 : 4)
                writer.writeString("opId")
                writer.writeString(result.opId)
                writer.writeString("success")
                writer.write(.bool(result.success))
                writer.writeString("achievedLevel")
                writer.writeString(result.achievedLevel.rawValue)
                if let error = result.error {
                    writer.writeString("error")
                    writer.writeString(error)
                }
            }
        }
        return writer.bytes
    }

    /// The message as a dynamic value (what `encode` writes), for JSON output and tests.
    public static func dataValue(of message: TopGunMessage) -> DataValue {
        let body = message.body
        let bodyType = type(of: body)
        switch message {
        case .httpSyncRequest, .httpSyncResponse:
            return .object(body.wireFields)
        default:
            break
        }
        switch bodyType.envelope {
        case .flat:
            var fields = body.wireFields
            fields.fields.insert(DataObject.Field(key: "type", value: .string(bodyType.type)), at: 0)
            return .object(fields)
        case .payload:
            return .object(DataObject(fields: [
                .init(key: "type", value: .string(bodyType.type)),
                .init(key: "payload", value: .object(body.wireFields)),
            ]))
        }
    }

    /// The typed message a decoded value stands for.
    public func message(from value: DataValue) throws(WireDecodingError) -> TopGunMessage {
        guard case .object(let object) = value else { throw WireDecodingError(.notAMap) }
        guard let typeValue = object["type"] else {
            return try Self.httpSyncBody(object)
        }
        guard case .string(let type) = typeValue else {
            throw WireDecodingError(.wrongType(expected: "string, got \(typeValue.kindName)"), field: "type")
        }
        guard let bodyType = Self.bodyTypesByName[type] else {
            throw WireDecodingError(.unknownType(type), field: "type")
        }
        switch bodyType.envelope {
        case .flat:
            return TopGunMessage(try bodyType.init(wireFields: object))
        case .payload:
            let payload: DataObject
            switch object["payload"] {
            case .object(let fields)?: payload = fields
            // A missing payload reads as empty: messages whose fields are all optional
            // (PARTITION_MAP_REQUEST) are sent without one.
            case nil, .null?: payload = DataObject()
            case let other?:
                throw WireDecodingError(.wrongType(expected: "map, got \(other.kindName)"), field: "payload")
            }
            do {
                return TopGunMessage(try bodyType.init(wireFields: payload))
            } catch {
                throw error.inField("payload")
            }
        }
    }

    static let bodyTypesByName: [String: any MessageBody.Type] = {
        var table: [String: any MessageBody.Type] = [:]
        for bodyType in TopGunMessage.bodyTypes where bodyType.type != "" {
            table[bodyType.type] = bodyType
        }
        return table
    }()

    /// A map without `type` is an HTTP sync body when it has that body's required fields.
    static func httpSyncBody(_ object: DataObject) throws(WireDecodingError) -> TopGunMessage {
        if object["clientId"] != nil || object["clientHlc"] != nil {
            return .httpSyncRequest(try HTTPSyncRequest(wireFields: object))
        }
        if object["serverHlc"] != nil {
            return .httpSyncResponse(try HTTPSyncResponse(wireFields: object))
        }
        throw WireDecodingError(.missingType, field: "type")
    }
}
