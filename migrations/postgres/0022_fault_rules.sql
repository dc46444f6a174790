-- Fault rules (/_emulator/tenants/{tid}/faults): the tenant's rules (NULL: none), cached with
-- the tenant, so a tenant without rules costs no statement; and each rule's counters, the
-- requests it matched and the times it fired, which its probability and count limit are
-- decided on.
ALTER TABLE tenants ADD COLUMN faults JSONB;

CREATE TABLE fault_counts (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    matched BIGINT NOT NULL,
    fired BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rule_id)
);
