import TopGunCore
import TopGunWire

/// Re-encodes a message with float64 `millis`, as the TypeScript client's msgpackr does, so
/// the frames have the client's bytes and size rather than our compact form.
public func clientStyleBytes(_ message: TopGunMessage) -> [UInt8] {
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

public func authFrame(token: String) -> [UInt8] {
    WireCodec().encode(.auth(Auth(token: token, protocolVersion: 1)))
}

/// A value object whose MessagePack encoding is exactly `bytes` long (when `bytes` ≥ 40):
/// `{title: "xxx…", done: false, priority: 3}`, shaped like a to-do item.
public func valueOfSize(_ bytes: Int) -> DataValue {
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

/// The `OP_BATCH` frames of one connection: one encoding, then only numbers of fixed width
/// are rewritten in place for each new batch, so the generator spends almost nothing per
/// frame: the batch number (nine digits inside every key and op id) and the HLC counter of
/// every op (a uint32, increasing with every batch, so a put to a key written before wins).
///
/// Without a key space every put has a key of its own and the map grows for as long as the
/// load runs. With `keySpace` K, batch b writes the keys of batch b mod K again (newer
/// values of the same K × ops-per-batch keys): a map at its working-set size.
///
/// Each op is what the HEAD client sends for a put: id, mapName, key, opType, record (the
/// value and an HLC timestamp with float64 millis), and the op-log extras `timestamp` and
/// `synced`. Key: `c<conn:5>-<batch:9><op:4>`; id: `<batch:9><op:4>`.
public struct BatchFrames {
    public private(set) var bytes: [UInt8]
    private var keyDigitOffsets: [Int] = []
    private var idDigitOffsets: [Int] = []
    /// Where each op's two counters (record timestamp, op-log timestamp) are, in op order.
    private var counterOffsets: [Int] = []
    public let opsPerBatch: Int
    public let keySpace: Int?
    /// Counters start here: a uint32 from the first batch on, so every stamp has the same width.
    public static let counterBase: Int64 = 1 << 16

    public init(
        connection: Int, opsPerBatch: Int, valueBytes: Int, mapName: String, writeConcern: WriteConcern?, nowMillis: Int64,
        keySpace: Int? = nil
    ) {
        precondition(opsPerBatch >= 1 && opsPerBatch <= 9999)
        precondition(keySpace.map { $0 >= 1 } ?? true)
        self.opsPerBatch = opsPerBatch
        self.keySpace = keySpace
        let nodeId = "c7b1a0de-5e55-4a1e-9f0e-\(String(connection).leftPadded(12))"
        let value = valueOfSize(valueBytes)
        var ops: [ClientOp] = []
        for i in 0..<opsPerBatch {
            let suffix = String(i).leftPadded(4)
            let ts = Timestamp(millis: nowMillis, counter: Self.counterBase + Int64(i), nodeId: nodeId)
            ops.append(ClientOp(
                id: "000000000" + suffix, mapName: mapName, key: "c\(String(connection).leftPadded(5))-000000000\(suffix)",
                opType: "PUT", record: LWWRecord(value: value, timestamp: ts), timestamp: ts, synced: false))
        }
        bytes = clientStyleBytes(.opBatch(OpBatch(ops: ops, writeConcern: writeConcern)))
        // Find each id and key by its encoded form (the fixstr header makes them unique), and
        // each counter by its uint32 encoding (unique too: nothing else is that number).
        var searchFrom = 0
        for op in ops {
            for (text, isKey) in [(op.id!, false), (op.key, true)] {
                let needle = [UInt8(0xa0 | text.utf8.count)] + Array(text.utf8)
                guard let at = bytes.firstIndex(of: needle) else { fatalError("template: \(text) not found") }
                let digitsStart = at + 1 + (text.utf8.count - 13)
                if isKey { keyDigitOffsets.append(digitsStart) } else { idDigitOffsets.append(digitsStart) }
            }
            let counter = UInt32(op.record!.timestamp.counter)
            let needle: [UInt8] = [0xce, UInt8(counter >> 24), UInt8((counter >> 16) & 0xff), UInt8((counter >> 8) & 0xff), UInt8(counter & 0xff)]
            for _ in 0..<2 {
                guard let at = bytes.firstIndex(of: needle, from: searchFrom) else { fatalError("template: counter \(counter) not found") }
                counterOffsets.append(at + 1)
                searchFrom = at + needle.count
            }
        }
    }

    /// Writes `batch` (mod 10^9) into every op id, the batch whose keys it writes into every
    /// key, and a counter that grows with `batch` into every timestamp.
    public mutating func stamp(batch: Int) {
        func digits(_ number: Int) -> [UInt8] {
            var digits = [UInt8](repeating: 0x30, count: 9)
            var n = number % 1_000_000_000
            for i in stride(from: 8, through: 0, by: -1) {
                digits[i] = 0x30 + UInt8(n % 10)
                n /= 10
            }
            return digits
        }
        let idDigits = digits(batch)
        let keyDigits = digits(keySpace.map { batch % $0 } ?? batch)
        let opsPerBatch = self.opsPerBatch
        bytes.withUnsafeMutableBufferPointer { out in
            for offset in idDigitOffsets {
                for i in 0..<9 { out[offset + i] = idDigits[i] }
            }
            for offset in keyDigitOffsets {
                for i in 0..<9 { out[offset + i] = keyDigits[i] }
            }
            Self.stampCounters(into: out, at: counterOffsets, batch: batch, opsPerBatch: opsPerBatch)
        }
    }

    /// Writes each op's HLC counter of batch `batch` (two offsets per op: its record's and its
    /// op's timestamp) as a big-endian uint32: every batch's timestamps are new.
    public static func stampCounters(into out: UnsafeMutableBufferPointer<UInt8>, at offsets: [Int], batch: Int, opsPerBatch: Int) {
        for (index, offset) in offsets.enumerated() {
            let counter = UInt32(truncatingIfNeeded: counterBase + Int64(batch % 40_000_000) * Int64(opsPerBatch) + Int64(index / 2))
            out[offset] = UInt8(counter >> 24)
            out[offset + 1] = UInt8((counter >> 16) & 0xff)
            out[offset + 2] = UInt8((counter >> 8) & 0xff)
            out[offset + 3] = UInt8(counter & 0xff)
        }
    }
}

extension String {
    public func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Array where Element == UInt8 {
    public func firstIndex(of needle: [UInt8], from start: Int = 0) -> Int? {
        guard needle.count <= count - start else { return nil }
        outer: for i in start...(count - needle.count) {
            for j in 0..<needle.count where self[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }
}
