-- The deployment's local certificate authority for HTTPS: one row, created by the first server
-- to start; every replica signs its server certificate with it.
CREATE TABLE tls_authority (
    slot TEXT PRIMARY KEY,
    certificate_pem TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
