-- Compliance policies (their assignments and actions for noncompliance kept with them: a
-- tenant has tens of policies, read whole), notification message templates, the outbox, and
-- each device's evaluation result per policy.

CREATE TABLE compliance_policies (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    odata_type TEXT NOT NULL,
    properties TEXT NOT NULL,
    scheduled_actions TEXT NOT NULL,
    assignments TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_modified_at TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE notification_templates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    properties TEXT NOT NULL,
    messages TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_modified_at TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

-- Emails and push messages the service sent, oldest first by seq.
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    wall_at TEXT NOT NULL
);
CREATE INDEX notifications_tenant ON notifications (tenant_id, seq);

-- The last evaluation of each policy that targets the device.
CREATE TABLE device_policy_states (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    state TEXT NOT NULL,
    settings TEXT NOT NULL,
    episode_start TEXT,
    grace_deadline TEXT,
    policy_version INTEGER NOT NULL,
    evaluated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, policy_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX device_policy_states_policy ON device_policy_states (tenant_id, policy_id, device_id);

-- When time alone may next change the device's compliance (grace deadline, check-in threshold,
-- a connector turning unresponsive): what clock moves and the worker look for.
ALTER TABLE managed_devices ADD COLUMN compliance_due_at TEXT;
CREATE INDEX managed_devices_compliance_due ON managed_devices (tenant_id, compliance_due_at);
