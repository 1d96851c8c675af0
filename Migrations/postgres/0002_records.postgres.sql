-- The record store of the data plane (design.md §4): one row per CRDT value, keyed by
-- tenant, kind, map and key; `payload` is the value's MessagePack form (StoredValueCodec).
-- Idempotent, so that a node may also apply it on its own before the runner exists.
CREATE TABLE IF NOT EXISTS records (
    tenant_id    text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('lww', 'ormap', 'counter')),
    map_name     text        NOT NULL,
    record_key   text        NOT NULL,
    partition_id integer     NOT NULL CHECK (partition_id BETWEEN 0 AND 270),
    payload      bytea       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, map_name, record_key)
) WITH (fillfactor = 80);
CREATE INDEX IF NOT EXISTS records_partition_idx ON records (partition_id);
