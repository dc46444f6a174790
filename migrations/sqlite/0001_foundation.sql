-- Tenants, their apps, the token signing key and the deviceManagement singleton.
-- Timestamps are RFC 3339 text in UTC as sqlx writes them, which sorts chronologically.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    clock_offset_us INTEGER NOT NULL DEFAULT 0 CHECK (clock_offset_us >= 0),
    bootstrap_client_id TEXT NOT NULL
);
CREATE INDEX tenants_created_at ON tenants (created_at);

CREATE TABLE apps (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    slot TEXT NOT NULL UNIQUE,
    private_key_pem TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE device_management (
    tenant_id TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    properties TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
