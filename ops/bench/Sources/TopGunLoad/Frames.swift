import TopGunCore
import TopGunWire

/// Re-encodes a message with float64 `millis`, as the TypeScript client's msgpackr does, so
/// the frames have the client's bytes and size rather than our compact form.
func clientStyleBytes(_ message: TopGunMessage) -> [UInt8] {
    func floatMillis(_ value: DataValue) -> DataValue {
        switch value {
        case .object(var object):
            for index in object.fields.indices {
                if object.fields[index].key == "millis", let m = object.fields[index].value.doubleValue {
                    object.fields[index].value = .double(m)
                } else {
                    object.fields[index].value = floatMillis(object.fields[index].value)
                }
            }
            return .object(object)
        case .array(let elements): return .array(elements.map(floatMillis))
        default: return value
        }
    }
    return MessagePackWriter.encode(floatMillis(WireCodec.dataValue(of: message)))
}

func authFrame(token: String) -> [UInt8] {
    WireCodec().encode(.auth(Auth(token: token, protocolVersion: 1)))
}

/// A value object whose MessagePack encoding is exactly `bytes` long (when `bytes` ≥ 40):
/// `{title: "xxx…", done: false, priority: 3}`, shaped like a to-do item.
func valueOfSize(_ bytes: Int) -> DataValue {
    func make(_ n: Int) -> DataValue {
        ["title": .string(String(repeating: "x", count: max(0, n))), "done": false, "priority": 3]
    }
    var n = max(0, bytes - 30)
    for _ in 0..<4 {
        let size = MessagePackWriter.encode(make(n)).count
        if size == bytes { break }
        n = max(0, n + (bytes - size))
    }
    return make(n)
}

/// The `OP_BATCH` frames of one connection: one encoding, then only the batch number (nine
/// digits inside every key and every op id) is rewritten in place for each new batch, so
/// every put has a key of its own and the generator spends almost nothing per frame.
///
/// Each op is what the HEAD client sends for a put: id, mapName, key, opType, record (the
/// value and an HLC timestamp with float64 millis), and the op-log extras `timestamp` and
/// `synced`. Key: `c<conn:5>-<batch:9><op:4>`; id: `<batch:9><op:4>`.
struct BatchFrames {
    private(set) var bytes: [UInt8]
    private var digitOffsets: [Int] = []
    let opsPerBatch: Int

    init(connection: Int, opsPerBatch: Int, valueBytes: Int, mapName: String, writeConcern: WriteConcern?, nowMillis: Int64) {
        precondition(opsPerBatch >= 1 && opsPerBatch <= 9999)
        self.opsPerBatch = opsPerBatch
        let nodeId = "c7b1a0de-5e55-4a1e-9f0e-\(String(connection).leftPadded(12))"
        let value = valueOfSize(valueBytes)
        var ops: [ClientOp] = []
        for i in 0..<opsPerBatch {
            let suffix = String(i).leftPadded(4)
            let ts = Timestamp(millis: nowMillis, counter: Int64(i), nodeId: nodeId)
            ops.append(ClientOp(
                id: "000000000" + suffix, mapName: mapName, key: "c\(String(connection).leftPadded(5))-000000000\(suffix)",
                opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false))
        }
        bytes = clientStyleBytes(.opBatch(OpBatch(ops: ops, writeConcern: writeConcern)))
        // Find each id and key by its encoded form (the fixstr header makes them unique).
        for op in ops {
            for text in [op.id!, op.key] {
                let needle = [UInt8(0xa0 | text.utf8.count)] + Array(text.utf8)
                guard let at = bytes.firstIndex(of: needle) else { fatalError("template: \(text) not found") }
                let digitsStart = at + 1 + (text.utf8.count - 13)
                digitOffsets.append(digitsStart)
            }
        }
    }

    /// Writes `batch` (mod 10^9) into every key and id.
    mutating func stamp(batch: Int) {
        var digits = [UInt8](repeating: 0x30, count: 9)
        var n = batch % 1_000_000_000
        for i in stride(from: 8, through: 0, by: -1) {
            digits[i] = 0x30 + UInt8(n % 10)
            n /= 10
        }
        bytes.withUnsafeMutableBufferPointer { out in
            for offset in digitOffsets {
                for i in 0..<9 { out[offset + i] = digits[i] }
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Array where Element == UInt8 {
    func firstIndex(of needle: [UInt8]) -> Int? {
        guard needle.count <= count else { return nil }
        outer: for i in 0...(count - needle.count) {
            for j in 0..<needle.count where self[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }
}
