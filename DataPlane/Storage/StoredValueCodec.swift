import TopGunCore
import TopGunWire

/// Turns a `StoredValue` into the MessagePack bytes of the `payload` column and back.
///
/// The payload is the value's wire form (protocol.md §3), written field by field without an
/// intermediate `DataValue` tree: an LWW record is `{value?, timestamp, ttlMs?}` (no `value`
/// field for a tombstone, so a live `null` stays distinct from a delete), an OR-Map entry is
/// `{key, records: [{value, timestamp, tag, ttlMs?}], tombstones}` and a counter is
/// `{p, n}`. Timestamps are written as integers and TTLs and counts as float64, so client
/// timestamps, OR tags and numbers come back bit for bit. The row's `kind` column says which
/// form to expect.
///
/// Decoding never traps: truncated, mistyped or hostile bytes become
/// `StorageError.corruptPayload`.
public enum StoredValueCodec {
    /// Generous limits: a stored OR-Map entry may outgrow any single frame that built it.
    static let limits = MessagePackLimits(maxInputBytes: 1 << 30, maxDepth: 128, maxContainerCount: 1 << 26)

    /// The payload bytes of `value`.
    public static func encode(_ value: StoredValue) -> [UInt8] {
        var writer = MessagePackWriter(reservingCapacity: 128)
        encode(value, into: &writer)
        return writer.bytes
    }

    /// Appends the payload of `value` to `writer`.
    public static func encode(_ value: StoredValue, into writer: inout MessagePackWriter) {
        switch value {
        case .lww(let record):
            writer.writeMapHeader(1 + (record.isTombstone ? 0 : 1) + (record.ttlMs == nil ? 0 : 1))
            if let payload = record.payload {
                writer.writeString("value")
                // A packed value is written as the bytes it arrived in.
                writer.write(payload)
            }
            writer.writeString("timestamp")
            write(record.timestamp, into: &writer)
            if let ttl = record.ttlMs {
                writer.writeString("ttlMs")
                writer.writeDouble(ttl)
            }
        case .orMap(let entry):
            writer.writeMapHeader(3)
            writer.writeString("key")
            writer.writeString(entry.key)
            writer.writeString("records")
            writer.writeArrayHeader(entry.records.count)
            for record in entry.records {
                writer.writeMapHeader(record.ttlMs == nil ? 3 : 4)
                writer.writeString("value")
                writer.write(record.value)
                writer.writeString("timestamp")
                write(record.timestamp, into: &writer)
                writer.writeString("tag")
                writer.writeString(record.tag)
                if let ttl = record.ttlMs {
                    writer.writeString("ttlMs")
                    writer.writeDouble(ttl)
                }
            }
            writer.writeString("tombstones")
            writer.writeArrayHeader(entry.tombstones.count)
            for tag in entry.tombstones { writer.writeString(tag) }
        case .counter(let counter):
            writer.writeMapHeader(2)
            writer.writeString("p")
            write(counter.positive, into: &writer)
            writer.writeString("n")
            write(counter.negative, into: &writer)
        }
    }

    /// The value stored as `payload` in a row of `kind`.
    public static func decode(_ payload: some Collection<UInt8>, kind: StoredValue.Kind) throws(StorageError) -> StoredValue {
        let root: DataValue
        do {
            root = try MessagePackReader(limits: limits).decode(Array(payload))
        } catch {
            throw .corruptPayload(row: nil, reason: error.description)
        }
        do {
            let object = try DataObject(wire: root)
            switch kind {
            case .lww:
                return .lww(LWWRecord(
                    // Present, even as nil, is a live value; absent is a tombstone (see encode).
                    value: object["value"],
                    timestamp: try object.required("timestamp"),
                    ttlMs: try object.optional("ttlMs")
                ))
            case .orMap:
                return .orMap(try ORMapEntry(wire: root))
            case .counter:
                let positive: WireDictionary<Double> = try object.optional("p") ?? WireDictionary([])
                let negative: WireDictionary<Double> = try object.optional("n") ?? WireDictionary([])
                return .counter(PNCounter(
                    positive: try dictionary(positive, field: "p"),
                    negative: try dictionary(negative, field: "n")
                ))
            }
        } catch {
            throw .corruptPayload(row: nil, reason: error.description)
        }
    }

    /// `decode(_:kind:)` for a row of the records table: errors name the row.
    static func decode(_ payload: some Collection<UInt8>, kind: StoredValue.Kind, row: String) throws(StorageError) -> StoredValue {
        do {
            return try decode(payload, kind: kind)
        } catch {
            if case .corruptPayload(nil, let reason) = error { throw .corruptPayload(row: row, reason: reason) }
            throw error
        }
    }

    private static func write(_ timestamp: Timestamp, into writer: inout MessagePackWriter) {
        writer.writeMapHeader(3)
        writer.writeString("millis")
        writer.writeInt(timestamp.millis)
        writer.writeString("counter")
        writer.writeInt(timestamp.counter)
        writer.writeString("nodeId")
        writer.writeString(timestamp.nodeId)
    }

    /// Node ids sorted, so that one counter always encodes to the same bytes.
    private static func write(_ counts: [String: Double], into writer: inout MessagePackWriter) {
        writer.writeMapHeader(counts.count)
        for (node, count) in counts.sorted(by: { $0.key < $1.key }) {
            writer.writeString(node)
            writer.writeDouble(count)
        }
    }

    private static func dictionary(_ counts: WireDictionary<Double>, field: String) throws(WireDecodingError) -> [String: Double] {
        var result: [String: Double] = [:]
        result.reserveCapacity(counts.entries.count)
        for (node, count) in counts.entries {
            guard result.updateValue(count, forKey: node) == nil else {
                throw WireDecodingError(.invalidValue("node id '\(node)' appears twice"), field: field)
            }
        }
        return result
    }
}
