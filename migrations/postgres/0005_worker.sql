-- The background worker: devices waiting for re-evaluation, actions for noncompliance that have
-- fired (once per episode), the tenant's event log, and the lease that lets one replica at a
-- time work a tenant.

CREATE TABLE reevaluation_queue (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    enqueued_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE fired_actions (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    episode_start TIMESTAMPTZ NOT NULL,
    action_id TEXT NOT NULL,
    fired_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, device_id, policy_id, episode_start, action_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    device_id TEXT,
    connector_id TEXT,
    document JSONB NOT NULL,
    virtual_at TIMESTAMPTZ NOT NULL,
    wall_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, seq);
CREATE INDEX events_device ON events (tenant_id, device_id, seq);

ALTER TABLE tenants ADD COLUMN worker_lease_owner TEXT;
ALTER TABLE tenants ADD COLUMN worker_lease_until TIMESTAMPTZ;
-- The partnerState the worker last logged, to log each change once.
ALTER TABLE mtd_connectors ADD COLUMN observed_state TEXT;
