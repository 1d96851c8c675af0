-- Tenants and the keys that sign their app JWTs (design.md §3, §5).
-- Applied by PostgresMigrationRunner inside one transaction; recorded in schema_migrations.

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,                 -- server-generated: tn_ + 20 base32 chars
    slug          TEXT NOT NULL,                    -- human-chosen, unique
    display_name  TEXT NOT NULL,
    plan          TEXT NOT NULL,                    -- free | pro | enterprise: picks default quotas
    status        TEXT NOT NULL DEFAULT 'active',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'deleted'))
);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,            -- server-generated: key_ + 24 base32 chars
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    algorithm          TEXT NOT NULL,
    -- HS256 only: the secret sealed with ChaChaPoly under the store's master key
    -- (format: 1 version byte, then nonce || ciphertext || tag; the kid is the associated data).
    secret_ciphertext  BYTEA,
    -- RS256, ES256, EdDSA only: the public key as registered (PEM, or JWK JSON).
    public_key_pem     TEXT,
    status             TEXT NOT NULL DEFAULT 'active',
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at         TIMESTAMPTZ,
    CONSTRAINT signing_keys_algorithm_check CHECK (algorithm IN ('HS256', 'RS256', 'ES256', 'EdDSA')),
    CONSTRAINT signing_keys_status_check CHECK (status IN ('active', 'revoked')),
    CONSTRAINT signing_keys_material_check CHECK (
        (algorithm = 'HS256' AND secret_ciphertext IS NOT NULL AND public_key_pem IS NULL)
        OR (algorithm <> 'HS256' AND secret_ciphertext IS NULL AND public_key_pem IS NOT NULL)
    ),
    CONSTRAINT signing_keys_revoked_check CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);

CREATE INDEX signing_keys_tenant_id_idx ON signing_keys (tenant_id, created_at);
