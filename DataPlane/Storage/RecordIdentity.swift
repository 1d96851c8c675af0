/// What names one row of the record store: the key and the kind of CRDT stored under it.
/// Storages upsert by it and the write-behind queue coalesces by it.
public struct RecordIdentity: Hashable, Sendable {
    public var key: StorageKey
    public var kind: StoredValue.Kind

    @inlinable
    public init(key: StorageKey, kind: StoredValue.Kind) {
        self.key = key
        self.kind = kind
    }
}

extension StoredRecord {
    /// The row this record is stored in.
    @inlinable
    public var identity: RecordIdentity { RecordIdentity(key: key, kind: value.kind) }
}

extension Array where Element == StoredRecord {
    /// The records with one per row: when a row appears twice, the later record replaces the
    /// earlier one in its place. A batch upsert must not touch one row twice (PostgreSQL's
    /// `ON CONFLICT DO UPDATE` refuses to), and "last write wins" is what a sequence of
    /// separate upserts would leave.
    func lastPerIdentity() -> [StoredRecord] {
        var positions: [RecordIdentity: Int] = [:]
        positions.reserveCapacity(count)
        var result: [StoredRecord] = []
        result.reserveCapacity(count)
        for record in self {
            if let position = positions[record.identity] {
                result[position] = record
            } else {
                positions[record.identity] = result.count
                result.append(record)
            }
        }
        return result
    }
}
