-- The cluster quota tables of the PostgreSQL schema, kept in the same shape so both dialects
-- have the same versions. A node on SQLite runs alone and never writes them.

CREATE TABLE IF NOT EXISTS cluster_tenant_seconds (
    tenant_id   TEXT NOT NULL,
    second      INTEGER NOT NULL,
    node_id     TEXT NOT NULL,
    admitted    INTEGER NOT NULL CHECK (admitted >= 0),
    demanded    INTEGER NOT NULL CHECK (demanded >= 0),
    connections INTEGER NOT NULL CHECK (connections >= 0),
    PRIMARY KEY (tenant_id, second, node_id)
);

CREATE TABLE IF NOT EXISTS cluster_quota_reservations (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('connections', 'subscriptions')),
    node_id     TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    reserved    INTEGER NOT NULL CHECK (reserved >= 0),
    PRIMARY KEY (tenant_id, kind, node_id)
);
