-- Refresh tokens (offline_access): kept as their SHA-256. Redeeming one deletes it and issues
-- its successor (rotation); a deleted or disabled user's are refused. Times are on the
-- tenant's clock.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
