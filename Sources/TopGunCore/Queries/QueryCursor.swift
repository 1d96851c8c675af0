/// The content of an opaque paging cursor: the position of the last row returned, the
/// hashes of the query it belongs to, and when it was issued.
///
/// Encoded as base64url (no padding) of a compact binary record: version byte, issue time
/// (ms), filter hash, sort hash, last key, then the last row's sort values. The Rust server
/// uses JSON inside the base64url; the content is opaque to clients, so only this server
/// needs to read it. Hashes use a stable hash, so any node of a cluster can check a cursor.
struct QueryCursor: Sendable, Equatable {
    static let formatVersion: UInt8 = 1

    var position: RecordPosition
    var filterHash: UInt64
    var sortHash: UInt64
    var issuedAtMillis: Int64

    static func == (lhs: QueryCursor, rhs: QueryCursor) -> Bool {
        lhs.position.key.hasSameUTF8(as: rhs.position.key)
            && lhs.position.sortValues.map { $0 ?? .null } == rhs.position.sortValues.map { $0 ?? .null }
            && lhs.filterHash == rhs.filterHash && lhs.sortHash == rhs.sortHash
            && lhs.issuedAtMillis == rhs.issuedAtMillis
    }

    init(position: RecordPosition, filterHash: UInt64, sortHash: UInt64, issuedAtMillis: Int64) {
        self.position = position
        self.filterHash = filterHash
        self.sortHash = sortHash
        self.issuedAtMillis = issuedAtMillis
    }

    init(position: RecordPosition, query: Query, issuedAtMillis: Int64) {
        self.init(
            position: position, filterHash: Self.filterHash(of: query), sortHash: Self.sortHash(of: query),
            issuedAtMillis: issuedAtMillis)
    }

    /// Parses an encoded cursor; nil for anything this server did not produce.
    init?(encoded: String) {
        guard let bytes = Base64URL.decode(encoded) else { return nil }
        var reader = CompactValueCodec.Reader(bytes)
        guard reader.byte() == Self.formatVersion,
            let issued = reader.uint64(), let filterHash = reader.uint64(), let sortHash = reader.uint64(),
            let key = reader.string(), let count = reader.count()
        else { return nil }
        var values: [DataValue?] = []
        for _ in 0..<count {
            guard let value = CompactValueCodec.decode(from: &reader) else { return nil }
            values.append(value.isNull ? nil : value)
        }
        guard reader.isAtEnd else { return nil }
        self.init(
            position: RecordPosition(sortValues: values, key: key), filterHash: filterHash, sortHash: sortHash,
            issuedAtMillis: Int64(bitPattern: issued))
    }

    var encoded: String {
        var writer = CompactValueCodec.Writer()
        writer.byte(Self.formatVersion)
        writer.uint64(UInt64(bitPattern: issuedAtMillis))
        writer.uint64(filterHash)
        writer.uint64(sortHash)
        writer.string(position.key)
        writer.varint(UInt64(position.sortValues.count))
        for value in position.sortValues {
            CompactValueCodec.encode(value ?? .null, into: &writer, canonical: false)
        }
        return Base64URL.encode(writer.bytes)
    }

    /// Identifies what is filtered and grouped: the predicate (or `where`), `groupBy` and
    /// `aggregations`. Not the limit, so pages may change size.
    static func filterHash(of query: Query) -> UInt64 {
        let filter: DataValue
        if let predicate = query.predicate {
            filter = ["predicate", predicate.dataValue]
        } else if let clause = query.where {
            filter = ["where", .object(clause)]
        } else {
            filter = ["all"]
        }
        let grouping: DataValue = [
            query.groupBy.map { .array($0.map(DataValue.string)) } ?? .null,
            query.aggregations.map { .array($0.map(\.dataValue)) } ?? .null,
        ]
        return StableHash.fnv1a64(CompactValueCodec.canonicalBytes([filter, grouping]))
    }

    /// Identifies the order: sort fields and directions, whichever wire form they came in.
    static func sortHash(of query: Query) -> UInt64 {
        let fields = (query.sort?.fields ?? []).map { DataValue.array([.string($0.field), .string($0.direction.rawValue)]) }
        return StableHash.fnv1a64(CompactValueCodec.canonicalBytes(.array(fields)))
    }
}
