import PostgresNIO

/// The batch write: one statement for thousands of rows. Columns travel as binary arrays and
/// `unnest` turns them back into rows, so the server parses and plans once per connection
/// (a named prepared statement) and a flush costs one round trip.
///
/// Rows whose writer knew they are new (`StoredRecord.mayExistInStorage == false`) go
/// through a plain `INSERT`, about as cheap as `COPY`; the others through `INSERT ... ON
/// CONFLICT DO UPDATE`, which costs an extra index probe per row and a new row version per
/// update. Both run in one statement, so the batch stays atomic. If a "new" row exists after
/// all, the statement fails with a unique violation and the storage writes the batch again
/// with every row as an upsert.
struct WriteRecordsStatement: PostgresPreparedStatement {
    static let name = "topgun_write_records_v2"
    static let sql = """
        WITH inserted AS (
            INSERT INTO records (tenant_id, kind, map_name, record_key, partition_id, payload, seq)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::bytea[], $7::int8[])
        )
        INSERT INTO records (tenant_id, kind, map_name, record_key, partition_id, payload, seq)
        SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::int4[], $13::bytea[], $14::int8[])
        ON CONFLICT (tenant_id, kind, map_name, record_key) DO UPDATE SET
            partition_id = EXCLUDED.partition_id, payload = EXCLUDED.payload, seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at
        """
    static let bindingDataTypes: [PostgresDataType] = Array(
        repeating: [.textArray, .textArray, .textArray, .textArray, .int4Array, .byteaArray, .int8Array], count: 2
    ).flatMap { $0 }

    typealias Row = ()

    /// The seven columns of a set of rows.
    struct Columns: Sendable {
        var tenants: PostgresArrayColumn
        var kinds: PostgresArrayColumn
        var mapNames: PostgresArrayColumn
        var keys: PostgresArrayColumn
        var partitions: PostgresArrayColumn
        var payloads: PostgresArrayColumn
        var sequences: PostgresArrayColumn

        init(capacity count: Int) {
            tenants = PostgresArrayColumn(.text, reservingBytes: count * 24)
            kinds = PostgresArrayColumn(.text, reservingBytes: count * 10)
            mapNames = PostgresArrayColumn(.text, reservingBytes: count * 20)
            keys = PostgresArrayColumn(.text, reservingBytes: count * 24)
            partitions = PostgresArrayColumn(.int4, reservingBytes: count * 8)
            payloads = PostgresArrayColumn(.bytea, reservingBytes: count * 128)
            sequences = PostgresArrayColumn(.int8, reservingBytes: count * 12)
        }

        mutating func append(_ record: StoredRecord, payload: [UInt8]) {
            tenants.append(record.key.tenant.rawValue)
            kinds.append(record.value.kind.rawValue)
            mapNames.append(record.key.mapName)
            keys.append(record.key.key)
            partitions.append(Int32(record.partition))
            payloads.append(bytes: payload)
            sequences.append(record.sequence)
        }

        func bind(into bindings: inout PostgresBindings) {
            bindings.append(tenants, context: .default)
            bindings.append(kinds, context: .default)
            bindings.append(mapNames, context: .default)
            bindings.append(keys, context: .default)
            bindings.append(partitions, context: .default)
            bindings.append(payloads, context: .default)
            bindings.append(sequences, context: .default)
        }
    }

    var inserts: Columns
    var upserts: Columns
    /// Whether any row goes through the plain `INSERT` (only then can the statement fail
    /// with a unique violation that a retry as upserts fixes).
    var hasInserts: Bool { inserts.keys.count > 0 }

    /// The rows of `records` (already validated, one per row); `trustNewRows: false` makes
    /// every row an upsert.
    init(_ records: ArraySlice<StoredRecord>, trustNewRows: Bool) {
        let newCount = trustNewRows ? records.lazy.filter { !$0.mayExistInStorage }.count : 0
        inserts = Columns(capacity: newCount)
        upserts = Columns(capacity: records.count - newCount)
        for record in records {
            let payload = StoredValueCodec.encode(record.value)
            if trustNewRows && !record.mayExistInStorage {
                inserts.append(record, payload: payload)
            } else {
                upserts.append(record, payload: payload)
            }
        }
    }

    /// The same rows, every one as an upsert.
    var allAsUpserts: WriteRecordsStatement {
        var copy = self
        copy.upserts.appendAll(of: inserts)
        copy.inserts = Columns(capacity: 0)
        return copy
    }

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 14)
        inserts.bind(into: &bindings)
        upserts.bind(into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}

extension WriteRecordsStatement.Columns {
    mutating func appendAll(of other: WriteRecordsStatement.Columns) {
        tenants.append(contentsOf: other.tenants)
        kinds.append(contentsOf: other.kinds)
        mapNames.append(contentsOf: other.mapNames)
        keys.append(contentsOf: other.keys)
        partitions.append(contentsOf: other.partitions)
        payloads.append(contentsOf: other.payloads)
        sequences.append(contentsOf: other.sequences)
    }
}
