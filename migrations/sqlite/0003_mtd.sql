-- MTD connectors and the threat reports partners send through them.

CREATE TABLE mtd_connectors (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    properties TEXT NOT NULL,
    partner_metadata TEXT NOT NULL,
    set_up INTEGER NOT NULL,
    deprovisioned INTEGER NOT NULL,
    error_code INTEGER NOT NULL DEFAULT 0,
    last_heartbeat_at TEXT,
    created_at TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

-- The latest report per device and connector.
CREATE TABLE threat_reports (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, connector_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX threat_reports_connector ON threat_reports (tenant_id, connector_id);

-- Partner apps speak for one catalog connector.
ALTER TABLE apps ADD COLUMN connector_id TEXT;
