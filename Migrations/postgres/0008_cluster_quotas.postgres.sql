-- A tenant's quotas held for the whole cluster rather than per node (issue 15, design.md §7).

-- Each node's count of a tenant's operations for each second: those it admitted, and those
-- its clients asked for (admitted or refused), with the tenant's connections open on it then.
-- Every node reads the others' rows to size its share of the tenant's operations per second
-- (`ClusterRateShare`). UNLOGGED: after a crash of the database the shares only start afresh.
CREATE UNLOGGED TABLE IF NOT EXISTS cluster_tenant_seconds (
    tenant_id   TEXT NOT NULL,
    second      INT8 NOT NULL,
    node_id     TEXT NOT NULL,
    admitted    INT8 NOT NULL CHECK (admitted >= 0),
    demanded    INT8 NOT NULL CHECK (demanded >= 0),
    connections INT8 NOT NULL CHECK (connections >= 0),
    PRIMARY KEY (tenant_id, second, node_id)
);

-- How many of a tenant's connections or live subscriptions each node's run may admit: a node
-- admits while it holds fewer than it reserved, and reserves more under an advisory lock per
-- tenant and kind, only while the live runs' reservations stay within the limit. Rows of runs
-- whose lease is gone stop counting.
CREATE TABLE IF NOT EXISTS cluster_quota_reservations (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('connections', 'subscriptions')),
    node_id     TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    reserved    INT8 NOT NULL CHECK (reserved >= 0),
    PRIMARY KEY (tenant_id, kind, node_id)
);
