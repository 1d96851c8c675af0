/// The per-key hashes the client puts into its Merkle trees (protocol.md §4.3). They must
/// match the client's bit for bit, or every sync walks down to the leaves.
public enum MerkleEntryHash {
    /// LWW entry: `fnv1a("key:millis:counter:nodeId")`; the value is not hashed, and a
    /// tombstone is an entry like any other.
    @inlinable
    public static func lww(key: borrowing String, timestamp: borrowing Timestamp) -> UInt32 {
        var hasher = FNV1a()
        hasher.add(key)
        hasher.add(unit: 0x3a)
        hasher.add(decimal: timestamp.millis)
        hasher.add(unit: 0x3a)
        hasher.add(decimal: timestamp.counter)
        hasher.add(unit: 0x3a)
        hasher.add(timestamp.nodeId)
        return hasher.value
    }

    /// OR-Map entry as the client computes it: `key:<key>`, then per record in tag order
    /// `tag:value:millis:counter:nodeId[:ttl=ttlMs]`, joined by `|`.
    public static func orMap(key: String, records: some Collection<ORMapRecord>) -> UInt32 {
        Hashing.fnv1a(orMapString(key: key, records: records))
    }

    /// The string that `orMap(key:records:)` hashes (exposed for tests and debugging).
    public static func orMapString(key: String, records: some Collection<ORMapRecord>) -> String {
        var parts = ["key:\(key)"]
        for record in records.sorted(by: { String.utf16Precedes($0.tag, $1.tag) }) {
            var part = "\(record.tag):\(valueText(record.value)):\(record.timestamp.millis):\(record.timestamp.counter):\(record.timestamp.nodeId)"
            if let ttlMs = record.ttlMs { part += ":ttl=\(JavaScriptText.number(ttlMs))" }
            parts.append(part)
        }
        return parts.joined(separator: "|")
    }

    /// The client's `stringifyValue`: objects and arrays as JSON with their own sorted keys
    /// as the replacer allow-list (which also filters nested objects), primitives via `String`.
    static func valueText(_ value: DataValue) -> String {
        switch value {
        case .object(let object):
            return JavaScriptText.json(value, allowList: object.keys.sorted(by: String.utf16Precedes))
        case .array(let elements):
            let indices = elements.indices.map(String.init).sorted(by: String.utf16Precedes)
            return JavaScriptText.json(value, allowList: indices)
        case .binary(let bytes):
            let indices = bytes.indices.map(String.init).sorted(by: String.utf16Precedes)
            return JavaScriptText.json(value, allowList: indices)
        default:
            return JavaScriptText.primitive(value)
        }
    }
}
