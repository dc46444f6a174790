-- MTD connectors and the threat reports partners send through them.

CREATE TABLE mtd_connectors (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    properties JSONB NOT NULL,
    partner_metadata JSONB NOT NULL,
    set_up BOOLEAN NOT NULL,
    deprovisioned BOOLEAN NOT NULL,
    error_code BIGINT NOT NULL DEFAULT 0,
    last_heartbeat_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

-- The latest report per device and connector.
CREATE TABLE threat_reports (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, device_id, connector_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX threat_reports_connector ON threat_reports (tenant_id, connector_id);

-- Partner apps speak for one catalog connector.
ALTER TABLE apps ADD COLUMN connector_id TEXT;

-- Threat reports and check-ins rewrite device rows all day without touching an indexed column:
-- room on each page lets PostgreSQL make those heap-only (HOT) updates, which write no index.
ALTER TABLE managed_devices SET (fillfactor = 70);
ALTER TABLE threat_reports SET (fillfactor = 70);
