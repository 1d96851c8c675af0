import TopGunCore

/// Decodes again a frame that failed on invalid UTF-8, reading its ops one by one, so that an
/// op whose bytes hold invalid UTF-8 is refused alone: it becomes an op carrying its `id` (when
/// that is readable) and a `decodingProblem` naming the field, which the server rejects for
/// good, and the rest of the frame decodes as usual. Ops live in `OP_BATCH` (`payload.ops`),
/// `CLIENT_OP` (`payload`) and the HTTP sync body (`operations`); bad bytes anywhere else leave
/// the frame refused.
///
/// Runs only after the general decoder failed with `invalidUTF8`, so valid frames never pay for
/// it. Everything outside the ops is read as the general decoder reads it, with the same
/// limits, so the two agree on everything but the marked ops.
struct OpByOpDecoder {
    /// Where a message keeps its ops.
    private enum OpsLocation {
        /// `payload.ops`, an array of ops (`OP_BATCH`).
        case batchPayload
        /// `payload`, one op (`CLIENT_OP`).
        case singleOpPayload
        /// `operations`, an array of ops (the HTTP sync body, which has no `type`).
        case operations
    }

    /// A member whose value is read specially: its name, and how to read its value at a depth.
    private typealias SpecialMember = (name: String, read: (inout OpByOpDecoder, Int) throws(WireDecodingError) -> DataValue)

    private var cursor: Cursor
    /// The ops refused so far, with their place in their list (0 for `CLIENT_OP`'s one op).
    private var refused: [(index: Int, op: ClientOp)] = []

    private init(cursor: Cursor) { self.cursor = cursor }

    /// The message `buffer` holds, its unreadable ops marked; nil when no op holds the bad
    /// bytes (the general decoder's error then stands). Throws the first error found outside
    /// the refused ops.
    static func decode(_ buffer: UnsafeBufferPointer<UInt8>, codec: WireCodec) throws(WireDecodingError) -> TopGunMessage? {
        var decoder = OpByOpDecoder(cursor: Cursor(base: buffer, limits: codec.limits))
        guard let location = decoder.opsLocation() else { return nil }
        decoder.cursor.position = 0
        let value = try decoder.readMessage(location)
        guard decoder.cursor.position == buffer.count else {
            throw WireDecodingError(.trailingBytes(count: buffer.count - decoder.cursor.position), offset: decoder.cursor.position)
        }
        guard !decoder.refused.isEmpty else { return nil }
        return decoder.marking(try codec.message(from: value))
    }

    /// Finds the message's `type` (the first, as the general decoder reads it) and from it
    /// where its ops are.
    private mutating func opsLocation() -> OpsLocation? {
        guard let count = cursor.readMapCount() else { return nil }
        for _ in 0..<count {
            guard let key = try? cursor.readKey(depth: 0) else { return nil }
            if key.hasSameUTF8(as: "type") {
                switch try? cursor.readValue(depth: 1) {
                case .string(let name)? where name.hasSameUTF8(as: OpBatch.type): return .batchPayload
                case .string(let name)? where name.hasSameUTF8(as: ClientOpMessage.type): return .singleOpPayload
                default: return nil
                }
            }
            guard cursor.skipValue(depth: 1) else { return nil }
        }
        return .operations
    }

    /// The whole message as a value, each op read on its own.
    private mutating func readMessage(_ location: OpsLocation) throws(WireDecodingError) -> DataValue {
        switch location {
        case .batchPayload:
            return try readMap(depth: 0, special: ("payload", { decoder, depth throws(WireDecodingError) in
                try decoder.readMap(depth: depth, special: ("ops", { decoder, depth throws(WireDecodingError) in
                    try decoder.readOps(depth: depth, path: "payload.ops")
                }))
            }))
        case .singleOpPayload:
            return try readMap(depth: 0, special: ("payload", { decoder, depth throws(WireDecodingError) in
                try decoder.readOp(depth: depth, path: "payload", index: 0)
            }))
        case .operations:
            return try readMap(depth: 0, special: ("operations", { decoder, depth throws(WireDecodingError) in
                try decoder.readOps(depth: depth, path: "operations")
            }))
        }
    }

    /// A map read as the general decoder reads it, but for the value of its first member named
    /// `special.name` (the one the general decoder uses; a later one is plain data).
    private mutating func readMap(depth: Int, special: SpecialMember) throws(WireDecodingError) -> DataValue {
        let start = cursor.position
        guard let count = cursor.readMapCount() else {
            // Not a map: whatever it is, the general decoder's reading (or error) applies.
            cursor.position = start
            return try cursor.readValue(depth: depth)
        }
        guard depth < cursor.limits.maxDepth else {
            throw WireDecodingError(.depthLimitExceeded(limit: cursor.limits.maxDepth), offset: cursor.position)
        }
        var fields: [DataObject.Field] = []
        fields.reserveCapacity(count)
        var specialRead = false
        for _ in 0..<count {
            let key = try cursor.readKey(depth: depth)
            do throws(WireDecodingError) {
                let value: DataValue
                if !specialRead, key.hasSameUTF8(as: special.name) {
                    specialRead = true
                    value = try special.read(&self, depth + 1)
                } else {
                    value = try cursor.readValue(depth: depth + 1)
                }
                fields.append(DataObject.Field(key: key, value: value))
            } catch {
                throw error.inField(key)
            }
        }
        return .object(DataObject(fields: fields))
    }

    /// An array of ops, each read on its own; `path` names the array in problems.
    private mutating func readOps(depth: Int, path: String) throws(WireDecodingError) -> DataValue {
        let start = cursor.position
        guard let count = cursor.readArrayCount() else {
            cursor.position = start
            return try cursor.readValue(depth: depth)
        }
        guard depth < cursor.limits.maxDepth else {
            throw WireDecodingError(.depthLimitExceeded(limit: cursor.limits.maxDepth), offset: cursor.position)
        }
        var ops: [DataValue] = []
        ops.reserveCapacity(count)
        for index in 0..<count {
            do throws(WireDecodingError) {
                ops.append(try readOp(depth: depth + 1, path: "\(path)[\(index)]", index: index))
            } catch {
                throw error.inField("[\(index)]")
            }
        }
        return .array(ops)
    }

    /// One op: read as usual or, when a string in it is not valid UTF-8, stepped over and
    /// recorded in `refused`; a stand-in that decodes takes its place until `marking`.
    private mutating func readOp(depth: Int, path: String, index: Int) throws(WireDecodingError) -> DataValue {
        let start = cursor.position
        do throws(WireDecodingError) {
            return try cursor.readValue(depth: depth)
        } catch {
            guard error.kind == .invalidUTF8 else { throw error }
            cursor.position = start
            let id = cursor.readOpIdLeniently(depth: depth)
            cursor.position = start
            // The op must still be whole: one that cannot be stepped over leaves the frame refused.
            guard cursor.skipValue(depth: depth) else { throw error }
            refused.append((index, ClientOp(id: id, mapName: "", key: "", decodingProblem: error.inField(path).description)))
            return ["mapName": "", "key": ""]
        }
    }

    /// The decoded message with the refused ops in place of their stand-ins.
    private func marking(_ message: TopGunMessage) -> TopGunMessage? {
        func replacingRefused(in ops: [ClientOp]) -> [ClientOp] {
            var ops = ops
            for (index, op) in refused where ops.indices.contains(index) { ops[index] = op }
            return ops
        }
        switch message {
        case .opBatch(var batch):
            batch.ops = replacingRefused(in: batch.ops)
            return .opBatch(batch)
        case .clientOp(var single):
            single.op = refused[0].op
            return .clientOp(single)
        case .httpSyncRequest(var request):
            request.operations = request.operations.map(replacingRefused)
            return .httpSyncRequest(request)
        default:
            return nil
        }
    }
}

extension Cursor {
    /// The `id` of the op (a map) at the cursor when its first `id` member is a string of valid
    /// UTF-8; nil otherwise. Steps over everything by structure alone, so it reads ops whose
    /// other strings are bad.
    mutating func readOpIdLeniently(depth: Int) -> String? {
        guard let count = readMapCount(), depth < limits.maxDepth else { return nil }
        for _ in 0..<count {
            let keyStart = position
            if let key = readRawString() {
                if keyEquals(key, "id") {
                    return readStringValue()
                }
            } else {
                position = keyStart
                guard skipValue(depth: depth + 1) else { return nil }  // a key that is not a short string
            }
            guard skipValue(depth: depth + 1) else { return nil }
        }
        return nil
    }
}

extension TopGunMessage {
    /// Why each op of the message that could not be read was refused (`ClientOp.decodingProblem`),
    /// in order; empty when every op was read, and for messages without ops.
    public var opDecodingProblems: [String] {
        let ops: [ClientOp]
        switch self {
        case .opBatch(let batch): ops = batch.ops
        case .clientOp(let single): ops = [single.op]
        case .httpSyncRequest(let request): ops = request.operations ?? []
        default: return []
        }
        return ops.compactMap(\.decodingProblem)
    }
}
