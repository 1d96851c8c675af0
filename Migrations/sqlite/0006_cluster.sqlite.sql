-- The cluster tables of the PostgreSQL schema (design.md §6), kept in the same shape so both
-- dialects have the same versions. A node on SQLite runs alone (`topgun dev`) and never
-- writes them: a cluster shares one PostgreSQL database.

CREATE TABLE IF NOT EXISTS cluster_identity (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    cluster_id TEXT NOT NULL,
    secret     BLOB NOT NULL CHECK (length(secret) >= 32),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS cluster_members (
    node_id          TEXT PRIMARY KEY,
    incarnation      TEXT NOT NULL,
    cluster_endpoint TEXT NOT NULL,
    websocket_url    TEXT NOT NULL,
    http_url         TEXT NOT NULL,
    protocol_version INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('ACTIVE', 'LEAVING')),
    started_at       TEXT NOT NULL,
    heartbeat_at     TEXT NOT NULL,
    lease_expires_at TEXT NOT NULL
);

-- `members` and `backup_nodes` hold JSON arrays of node ids (SQLite has no arrays).
CREATE TABLE IF NOT EXISTS cluster_partition_table (
    singleton    INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    version      INTEGER NOT NULL,
    members      TEXT NOT NULL,
    backup_count INTEGER NOT NULL,
    coordinator  TEXT NOT NULL,
    published_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS cluster_partitions (
    partition_id INTEGER PRIMARY KEY CHECK (partition_id >= 0 AND partition_id < 271),
    owner_node   TEXT NOT NULL,
    backup_nodes TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    migration_target TEXT
);

CREATE TABLE IF NOT EXISTS cluster_replicas (
    partition_id INTEGER NOT NULL CHECK (partition_id >= 0 AND partition_id < 271),
    node_id      TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    synced_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (partition_id, node_id)
);
