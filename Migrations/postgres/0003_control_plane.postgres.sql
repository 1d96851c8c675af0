-- What the control plane adds (issue 4, design.md §5): tenant life-cycle details, key labels,
-- quotas, versioned map schemas, usage per tenant and hour, the audit log, admin tokens and
-- idempotency records. Applied by PostgresMigrationRunner inside one transaction.

ALTER TABLE tenants ADD COLUMN suspended_at TIMESTAMPTZ;
ALTER TABLE tenants ADD COLUMN suspension_reason TEXT;
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX tenants_created_idx ON tenants (created_at, id);

ALTER TABLE signing_keys ADD COLUMN label TEXT;
-- A key registered as a JWK: the JWK as registered (public_key_pem then holds it as PEM).
ALTER TABLE signing_keys ADD COLUMN public_key_jwk TEXT;

-- One row per tenant from its creation. custom_* are NULL while the tenant follows its
-- plan's defaults, all six set once replaced.
CREATE TABLE tenant_quotas (
    tenant_id                     TEXT PRIMARY KEY REFERENCES tenants (id),
    custom_max_connections        BIGINT,
    custom_max_operations_per_second BIGINT,
    custom_max_storage_bytes      BIGINT,
    custom_max_maps               BIGINT,
    custom_max_message_bytes      BIGINT,
    custom_max_live_subscriptions BIGINT,
    version                       BIGINT NOT NULL,
    updated_at                    TIMESTAMPTZ NOT NULL,
    CONSTRAINT tenant_quotas_custom_check CHECK (
        (custom_max_connections IS NULL) = (custom_max_operations_per_second IS NULL)
        AND (custom_max_connections IS NULL) = (custom_max_storage_bytes IS NULL)
        AND (custom_max_connections IS NULL) = (custom_max_maps IS NULL)
        AND (custom_max_connections IS NULL) = (custom_max_message_bytes IS NULL)
        AND (custom_max_connections IS NULL) = (custom_max_live_subscriptions IS NULL)
    )
);
-- Tenants created before this migration follow their plan.
INSERT INTO tenant_quotas (tenant_id, version, updated_at) SELECT id, 1, created_at FROM tenants;

-- Where each map's schema history stands: the version in force (NULL once deleted) and the
-- highest version ever created, so numbering continues after a delete.
CREATE TABLE map_schemas (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    map              TEXT NOT NULL,
    current_version  INTEGER,
    latest_version   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, map)
);

CREATE TABLE map_schema_versions (
    tenant_id    TEXT NOT NULL,
    map          TEXT NOT NULL,
    version      INTEGER NOT NULL,
    enforcement  TEXT NOT NULL,
    schema_json  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, map, version),
    FOREIGN KEY (tenant_id, map) REFERENCES map_schemas (tenant_id, map),
    CONSTRAINT map_schema_versions_enforcement_check CHECK (enforcement IN ('off', 'warn', 'strict'))
);

-- Usage per tenant and UTC hour (design.md §7). Sums, a peak and a last measurement.
CREATE TABLE usage_hours (
    tenant_id           TEXT NOT NULL,
    period_start        TIMESTAMPTZ NOT NULL,
    operations          BIGINT NOT NULL DEFAULT 0,
    bytes_in            BIGINT NOT NULL DEFAULT 0,
    bytes_out           BIGINT NOT NULL DEFAULT 0,
    connection_seconds  BIGINT NOT NULL DEFAULT 0,
    peak_connections    BIGINT NOT NULL DEFAULT 0,
    storage_bytes       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, period_start)
);
CREATE INDEX usage_hours_period_idx ON usage_hours (period_start, tenant_id);

-- Flushes already applied, so a retried flush counts once.
CREATE TABLE usage_flushes (
    flush_id    TEXT PRIMARY KEY,
    applied_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_events (
    id               TEXT PRIMARY KEY,           -- aud_ + 26 base32 chars
    time             TIMESTAMPTZ NOT NULL,
    actor            TEXT NOT NULL,              -- adm_..., bootstrap or system
    action           TEXT NOT NULL,
    tenant_id        TEXT,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    target_version   INTEGER,
    request_id       TEXT NOT NULL,
    idempotency_key  TEXT,
    details          TEXT NOT NULL DEFAULT '{}'  -- a JSON object; never secrets
);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, time DESC, id DESC);

CREATE TABLE admin_tokens (
    id            TEXT PRIMARY KEY,              -- adm_ + 20 base32 chars
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,                 -- space-separated, in the contract's order
    value_hash    BYTEA NOT NULL,                -- SHA-256 of the value; the value is never stored
    prefix        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    CONSTRAINT admin_tokens_value_hash_key UNIQUE (value_hash)
);
CREATE INDEX admin_tokens_created_idx ON admin_tokens (created_at, id);

-- Responses of POSTs sent with an Idempotency-Key, per admin token (scope), for 24 hours.
-- response_body is sealed under the metadata master key (it may hold a one-time secret).
CREATE TABLE idempotency_records (
    scope             TEXT NOT NULL,
    key               TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    body_hash         BYTEA NOT NULL,
    state             TEXT NOT NULL,             -- in_progress | completed
    response_status   INTEGER,
    response_headers  TEXT,                      -- JSON array of {name, value}
    response_body     BYTEA,
    created_at        TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_records_state_check CHECK (state IN ('in_progress', 'completed'))
);
CREATE INDEX idempotency_records_expiry_idx ON idempotency_records (expires_at);
