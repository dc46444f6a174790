-- Interactive sign-in (the authorization code flow). Apps gain their sign-in settings as
-- Microsoft Graph's application shape holds them (redirect URIs by platform,
-- isFallbackPublicClient, the delegated permissions users may grant), as one JSON document.
ALTER TABLE apps ADD COLUMN sign_in TEXT NOT NULL DEFAULT '{}';

-- Authorization codes, kept as their SHA-256. A code is redeemed once: the row stays, marked,
-- until it expires, so that a second redemption is recognised and the tokens of the first
-- revoked. Times are on the tenant's clock.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    nonce TEXT,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    redeemed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (tenant_id, expires_at);

-- The refresh tokens descending from one authorization code share its hash as their family,
-- through every rotation: a replayed code revokes them all. A single-page app's keep the
-- expiry of the first (24 hours, not extended by rotation) and are redeemed cross-origin only.
ALTER TABLE refresh_tokens ADD COLUMN family TEXT;
ALTER TABLE refresh_tokens ADD COLUMN single_page_app INTEGER NOT NULL DEFAULT 0;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- Browser sessions of the sign-in page (the session cookie holds the id, this its SHA-256):
-- the users signed in on a browser, for single sign-on, `prompt=none` and the account picker.
CREATE TABLE sign_in_sessions (
    session_hash TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    signed_in_at TEXT NOT NULL,
    PRIMARY KEY (session_hash, tenant_id, user_id)
);
