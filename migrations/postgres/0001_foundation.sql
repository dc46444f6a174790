-- Tenants, their apps, the token signing key and the deviceManagement singleton.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    clock_offset_us BIGINT NOT NULL DEFAULT 0 CHECK (clock_offset_us >= 0),
    bootstrap_client_id TEXT NOT NULL
);
CREATE INDEX tenants_created_at ON tenants (created_at);

CREATE TABLE apps (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    permissions JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    slot TEXT NOT NULL UNIQUE,
    private_key_pem TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE device_management (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    properties JSONB NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0
);
