-- The record store of the data plane (design.md §4): one row per CRDT value, keyed by
-- tenant, kind, map and key; `payload` is the value's MessagePack form (StoredValueCodec);
-- `updated_at` is Unix milliseconds. Idempotent, so that a node may also apply it on its
-- own before the runner exists.
CREATE TABLE IF NOT EXISTS records (
    tenant_id    TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('lww', 'ormap', 'counter')),
    map_name     TEXT    NOT NULL,
    record_key   TEXT    NOT NULL,
    partition_id INTEGER NOT NULL CHECK (partition_id BETWEEN 0 AND 270),
    payload      BLOB    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, map_name, record_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_partition_idx ON records (partition_id);
