-- The device authorization grant: a code the device polls with (kept as its SHA-256) and the
-- code a user enters at /devicelogin; user_id is set when the user signs in there. Times are on
-- the tenant's clock. A code is deleted when its tokens are issued.
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    user_id TEXT
);
CREATE INDEX device_codes_tenant_expires ON device_codes (tenant_id, expires_at);
