-- Each map's CRDT (LWW or OR-Map), recorded once per tenant and map by the first node that
-- sees a write to it and read by every other: two nodes seeing different first writes agree
-- on the row that was inserted first, and refuse writes of the other kind.
CREATE TABLE IF NOT EXISTS map_kinds (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    map         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('lww', 'or')),
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, map)
);
