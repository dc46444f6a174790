-- Conditional Access (Graph /identity/conditionalAccess/policies): each policy's Graph document,
-- evaluated at every user sign-in; the sign-in log (Graph /auditLogs/signIns), newest first,
-- times on the tenant's clock; and the device a refresh token's sign-in came from, so that the
-- policies are evaluated again for it when the token is redeemed.
CREATE TABLE ca_policies (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE sign_ins (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE UNIQUE INDEX sign_ins_id ON sign_ins (tenant_id, id);

ALTER TABLE refresh_tokens ADD COLUMN device_id TEXT;

-- The bootstrap admin app holds every permission an endpoint requires: those of Conditional
-- Access and the sign-in log too.
UPDATE apps SET permissions = json_insert(permissions,
    '$[#]', 'AuditLog.Read.All',
    '$[#]', 'Policy.Read.All',
    '$[#]', 'Policy.Read.ConditionalAccess',
    '$[#]', 'Policy.ReadWrite.ConditionalAccess')
WHERE client_id IN (SELECT bootstrap_client_id FROM tenants WHERE tenants.id = apps.tenant_id);
