-- The cluster of data-plane nodes that share this database (design.md §6): its identity,
-- each node's lease, and the partition table the coordinator publishes.

-- One row: the cluster's id and the secret its nodes prove to each other on the cluster
-- port, created by the first node that starts (later nodes read it).
CREATE TABLE IF NOT EXISTS cluster_identity (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    cluster_id TEXT NOT NULL,
    secret     BYTEA NOT NULL CHECK (octet_length(secret) >= 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One lease per node, renewed by its heartbeat. Expiry is the database's clock, so nodes'
-- clocks never need to agree. `incarnation` names one run of the node: a restarted node
-- takes its old row over only once the old lease has expired.
CREATE TABLE IF NOT EXISTS cluster_members (
    node_id          TEXT PRIMARY KEY,
    incarnation      TEXT NOT NULL,
    cluster_endpoint TEXT NOT NULL,
    websocket_url    TEXT NOT NULL,
    http_url         TEXT NOT NULL,
    protocol_version INT4 NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('ACTIVE', 'LEAVING')),
    started_at       TIMESTAMPTZ NOT NULL,
    heartbeat_at     TIMESTAMPTZ NOT NULL,
    lease_expires_at TIMESTAMPTZ NOT NULL
);

-- One row: the version of the published table and the nodes it was computed for.
CREATE TABLE IF NOT EXISTS cluster_partition_table (
    singleton    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version      INT8 NOT NULL,
    members      TEXT[] NOT NULL,
    backup_count INT4 NOT NULL,
    coordinator  TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each partition's owner, backups and ownership epoch. A flush locks its partitions' rows
-- (FOR SHARE) and writes only while the row still names the flushing node and its epoch:
-- the coordinator's update of a row waits for such a flush, and a later flush sees the new
-- owner, so a deposed owner never overwrites its successor.
CREATE TABLE IF NOT EXISTS cluster_partitions (
    partition_id INT4 PRIMARY KEY CHECK (partition_id >= 0 AND partition_id < 271),
    owner_node   TEXT NOT NULL,
    backup_nodes TEXT[] NOT NULL,
    epoch        INT8 NOT NULL,
    -- Set while the partition moves: the node that takes it over once it holds a copy.
    migration_target TEXT
);

-- Which nodes hold a complete copy of a partition under an owner's epoch (reported by the
-- owner once a backup or migration target has acknowledged its whole snapshot): the
-- coordinator flips a moving partition only to a node listed here.
CREATE TABLE IF NOT EXISTS cluster_replicas (
    partition_id INT4 NOT NULL CHECK (partition_id >= 0 AND partition_id < 271),
    node_id      TEXT NOT NULL,
    epoch        INT8 NOT NULL,
    synced_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_id, node_id)
);
